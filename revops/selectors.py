"""Reads for the people pages and the platform status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from revops.access import people_directory
from revops.models import BeatTick, Role, Team, User

BEAT_TICK_NAME = "beat"
# Beat ticks every 30 s; two missed ticks plus slack means beat (or every worker) is down.
BEAT_STALE_AFTER = dt.timedelta(seconds=90)


PEOPLE_SORTS = {"name": ("name", "pk"), "role": ("role", "name", "pk"), "team": ("team__name", "name", "pk")}


def people_list(
    *, viewer: User, role: str = "", team_id: int | None = None, q: str = "", sort: str = "name"
) -> QuerySet[User]:
    people = people_directory(viewer).select_related("team", "team__manager")
    if role:
        people = people.filter(role=role)
    if team_id:
        people = people.filter(team_id=team_id)
    if q:
        people = people.filter(Q(name__icontains=q) | Q(email__icontains=q))
    return people.order_by(*PEOPLE_SORTS.get(sort, PEOPLE_SORTS["name"]))


def teams_overview() -> QuerySet[Team]:
    """Each team with its manager and head count by role, in one query."""
    by_role = {
        f"n_{role}": Count("members", filter=Q(members__role=role, members__is_active=True)) for role in Role.values
    }
    return Team.objects.select_related("manager").annotate(
        n_members=Count("members", filter=Q(members__is_active=True)), **by_role
    )


def headcount_by_role() -> dict[str, int]:
    rows = User.objects.filter(is_active=True).values("role").annotate(n=Count("pk"))
    counts = dict.fromkeys(Role.values, 0)
    counts.update({row["role"]: row["n"] for row in rows})
    return counts


@dataclass(frozen=True)
class BeatStatus:
    status: str  # "ok", "stale" or "never"
    last_tick: dt.datetime | None


def beat_status(*, now: dt.datetime | None = None) -> BeatStatus:
    tick = BeatTick.objects.filter(name=BEAT_TICK_NAME).values_list("ticked_at", flat=True).first()
    if tick is None:
        return BeatStatus("never", None)
    now = now or timezone.now()
    return BeatStatus("ok" if now - tick <= BEAT_STALE_AFTER else "stale", tick)
