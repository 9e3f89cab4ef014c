"""Reads for the home pages' usage panels and the expansion opportunities list.

Each function takes the viewer's scope (querysets from ``usage.access`` /
``accounts.access``) and returns small, already-ordered lists: a home panel shows the few
items worth acting on today, each with the money at stake, and links to the full list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from accounts.models import Contract, OwnerRole, Ownership
from usage.models import (
    ACTIVE_ALERT_STATES,
    AccountMetrics,
    Alert,
    AlertState,
    ImportJob,
    QuarantinedEvent,
    Severity,
)
from usage.signals.alerts import RISK_KINDS
from usage.signals.selectors import revenue_at_risk_once

ZERO = Decimal(0)
NEW_ALERT_DAYS = 7
SNOOZE_ENDING_DAYS = 7
GATE_HORIZON_DAYS = 90
SHOWN = 5


@dataclass(frozen=True)
class Triage:
    new: list[Alert]
    critical: list[Alert]
    snoozes_ending: list[Alert]
    active: int
    at_risk: Decimal
    new_count: int
    critical_count: int


def triage(*, queue: QuerySet[Alert], as_of: dt.date | None, today: dt.date) -> Triage:
    """A CSM's (or a leader's) queue today: alerts opened in the last week, critical ones,
    snoozes that end within a week, and the queue's revenue at risk (once per account)."""
    active = queue.filter(state__in=ACTIVE_ALERT_STATES).select_related("account")
    order = ("-severity", "-revenue_at_risk", "opened_on", "pk")
    since = (as_of or today) - dt.timedelta(days=NEW_ALERT_DAYS)
    new = active.filter(opened_on__gt=since, state=AlertState.OPEN)
    critical = active.filter(severity=Severity.CRITICAL).exclude(state=AlertState.SNOOZED)
    ending = active.filter(
        state=AlertState.SNOOZED, snoozed_until__lte=today + dt.timedelta(days=SNOOZE_ENDING_DAYS)
    ).order_by("snoozed_until", "pk")
    return Triage(
        new=list(new.order_by(*order)[:SHOWN]),
        critical=list(critical.order_by(*order)[:SHOWN]),
        snoozes_ending=list(ending[:SHOWN]),
        active=active.count(),
        at_risk=revenue_at_risk_once(active),
        new_count=new.count(),
        critical_count=critical.count(),
    )


@dataclass(frozen=True)
class GateRisk:
    metrics: AccountMetrics
    shortfall: Decimal  # ARR short of the floor: committed × floor − run rate
    days_to_gate: int


def under_floor_before_gate(*, book: QuerySet[AccountMetrics], floor: Decimal, as_of: dt.date) -> list[GateRisk]:
    """Accounts in ``book`` burning under the payout floor with a comp gate in the next
    90 days, soonest gate first: the ARR each needs to reach the floor is the money at stake."""
    rows = (
        book.filter(
            committed_arr__gt=0,
            burn_rate__lt=floor,
            next_gate_on__isnull=False,
            next_gate_on__lte=as_of + dt.timedelta(days=GATE_HORIZON_DAYS),
        )
        .select_related("account")
        .order_by("next_gate_on", "-committed_arr", "pk")
    )
    return [
        GateRisk(
            m,
            max(ZERO, (m.committed_arr * floor - m.run_rate).quantize(Decimal("0.01"))),
            (m.next_gate_on - as_of).days,
        )
        for m in rows
    ]


# --- Expansion opportunities ---------------------------------------------------------------


def _renewal_on() -> Subquery:
    """The end of the contract in force on the snapshot's day (the latest-ending one)."""
    return Subquery(
        Contract.objects.filter(
            account_id=OuterRef("account_id"), start_on__lte=OuterRef("as_of"), end_on__gte=OuterRef("as_of")
        )
        .order_by("-end_on")
        .values("end_on")[:1]
    )


def opportunities(*, visible, as_of: dt.date, order: str = "-excess") -> QuerySet[AccountMetrics]:
    """Accounts consuming at or above their commitment (burn ≥ 100%), or whose prepaid
    credits run out before the contract ends: a renewal or expansion conversation, never
    revenue at risk. Annotated with ``renewal_on`` and ``excess`` (run rate − committed ARR,
    per year)."""
    rows = (
        AccountMetrics.objects.filter(as_of=as_of, account__in=visible)
        .annotate(renewal_on=_renewal_on(), excess=F("run_rate") - F("committed_arr"))
        .filter(
            Q(committed_arr__gt=0, burn_rate__gte=1)
            | Q(credits_run_out_on__isnull=False, renewal_on__isnull=False, credits_run_out_on__lt=F("renewal_on"))
        )
        .select_related("account")
    )
    field = order.lstrip("-")
    ordering = F(field).desc(nulls_last=True) if order.startswith("-") else F(field).asc(nulls_last=True)
    return rows.order_by(ordering, "account__name", "pk")


def owners_by_account(account_ids: list[int], *, on: dt.date) -> dict[int, dict[str, list[str]]]:
    """The account team on ``on``: {account id: {"ae": [names], "csm": [names]}} (one query)."""
    team: dict[int, dict[str, list[str]]] = {pk: {"ae": [], "csm": []} for pk in account_ids}
    rows = (
        Ownership.objects.filter(account_id__in=account_ids, start_on__lte=on)
        .filter(Q(end_on__isnull=True) | Q(end_on__gte=on))
        .select_related("person")
        .order_by("role", "person__name")
    )
    for o in rows:
        team[o.account_id]["csm" if o.role == OwnerRole.CSM else "ae"].append(o.person.name)
    return team


# --- Data health (finance, admins) -----------------------------------------------------------


@dataclass(frozen=True)
class DataHealth:
    failed_jobs: list[ImportJob]
    failed_count: int
    running_count: int
    quarantined: int
    quarantine_oldest: dt.datetime | None
    quarantine_reasons: list[tuple[str, int]]


def data_health(*, since: dt.datetime) -> DataHealth:
    failed = ImportJob.objects.filter(status=ImportJob.Status.FAILED, created_at__gte=since)
    reasons = QuarantinedEvent.objects.values("reason").annotate(n=Count("pk")).order_by("-n", "reason")[:3]
    oldest = QuarantinedEvent.objects.order_by("received_at").values_list("received_at", flat=True).first()
    return DataHealth(
        failed_jobs=list(failed.select_related("created_by").order_by("-created_at")[:SHOWN]),
        failed_count=failed.count(),
        running_count=ImportJob.objects.filter(status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]).count(),
        quarantined=QuarantinedEvent.objects.count(),
        quarantine_oldest=oldest,
        quarantine_reasons=[(row["reason"], row["n"]) for row in reasons],
    )


# --- Movers (leaders) ----------------------------------------------------------------------


def movers(*, visible, as_of: dt.date, compare_days: int = 30) -> tuple[list[dict], list[dict], dt.date | None]:
    """Top-level accounts whose run rate moved most since the newest snapshot at least
    ``compare_days`` back (per year): (up, down, that day), five each."""
    # Snapshots are kept for month ends and the last days, not every day: compare with the
    # newest one at least ``compare_days`` back.
    before = (
        AccountMetrics.objects.filter(as_of__lte=as_of - dt.timedelta(days=compare_days))
        .order_by("-as_of")
        .values_list("as_of", flat=True)
        .first()
    )
    if before is None:
        return [], [], None
    then = AccountMetrics.objects.filter(account_id=OuterRef("account_id"), as_of=before).values("run_rate")[:1]
    rows = (
        AccountMetrics.objects.filter(as_of=as_of, account__in=visible, account__parent__isnull=True)
        .annotate(then=Subquery(then))
        .filter(then__isnull=False)
        .annotate(change=F("run_rate") - F("then"))
        .select_related("account")
    )
    up = list(rows.filter(change__gt=0).order_by("-change", "pk")[:SHOWN])
    down = list(rows.filter(change__lt=0).order_by("change", "pk")[:SHOWN])
    return [_mover(r) for r in up], [_mover(r) for r in down], before


def _mover(row: AccountMetrics) -> dict:
    relative = (row.change / row.then) if row.then else None
    return {"account": row.account, "run_rate": row.run_rate, "change": row.change, "relative": relative}


# --- Per-rep roll-ups (managers, leaders) ----------------------------------------------------


@dataclass
class RepRollup:
    person: object
    accounts: int = 0
    run_rate: Decimal = ZERO
    committed_arr: Decimal = ZERO
    open_alerts: int = 0
    at_risk: Decimal = ZERO

    @property
    def burn_rate(self) -> Decimal | None:
        return (self.run_rate / self.committed_arr).quantize(Decimal("0.0001")) if self.committed_arr else None


def rep_rollups(*, people: list, as_of: dt.date, visible_ids: set[int]) -> list[RepRollup]:
    """Each person's book on ``as_of`` (accounts they own in any role, with their divisions)
    summed the way the book sums it: money over top-level accounts of the book only (a
    division is inside its parent's figures); open alerts and revenue at risk (once per
    account) over every account. A fixed number of queries, whatever the team's size."""
    from accounts.models import Account

    parent_of = dict(Account.objects.values_list("pk", "parent_id"))
    children: dict[int, list[int]] = {}
    for pk, parent in parent_of.items():
        if parent is not None:
            children.setdefault(parent, []).append(pk)
    direct: dict[int, set[int]] = {p.pk: set() for p in people}
    for person_id, account_id in (
        Ownership.objects.filter(person_id__in=direct, start_on__lte=as_of)
        .filter(Q(end_on__isnull=True) | Q(end_on__gte=as_of))
        .values_list("person_id", "account_id")
    ):
        direct[person_id].add(account_id)
    books: dict[int, set[int]] = {}
    for person_id, roots in direct.items():
        book, stack = set(), list(roots)
        while stack:
            pk = stack.pop()
            if pk not in book:
                book.add(pk)
                stack.extend(children.get(pk, ()))
        books[person_id] = book & visible_ids
    every = set().union(*books.values()) if books else set()
    figures = {
        pk: (run, committed)
        for pk, run, committed in AccountMetrics.objects.filter(as_of=as_of, account_id__in=every).values_list(
            "account_id", "run_rate", "committed_arr"
        )
    }
    active = Alert.objects.filter(account_id__in=every, state__in=ACTIVE_ALERT_STATES).order_by()
    alert_counts = dict(active.values("account_id").annotate(n=Count("pk")).values_list("account_id", "n"))
    risk = {}
    for account_id, kind, amount in active.values_list("account_id", "kind", "revenue_at_risk"):
        if kind in RISK_KINDS:
            risk[account_id] = max(risk.get(account_id, ZERO), amount)
    rollups = []
    for person in people:
        book = books[person.pk]
        row = RepRollup(person=person, accounts=sum(1 for pk in book if pk in figures))
        for pk in book:
            if pk in figures and parent_of.get(pk) not in book:
                row.run_rate += figures[pk][0]
                row.committed_arr += figures[pk][1]
            row.open_alerts += alert_counts.get(pk, 0)
            row.at_risk += risk.get(pk, ZERO)
        rollups.append(row)
    return sorted(rollups, key=lambda r: (-r.run_rate, r.person.name))
