"""The six documented demo people (one per role) and their TOTP codes.

Everything is deterministic so the README can list the logins.
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.db import transaction

from demo.data import DEMO_PASSWORD, DEMO_PEOPLE, DEMO_TEAMS, DEMO_TOTP_SECRET
from revops.models import Role, Team, User


@transaction.atomic
def seed_people() -> list[User]:
    """Create (or reset) the demo people and teams. Safe to run twice."""
    people: list[User] = []
    for spec in DEMO_PEOPLE:
        user, _ = User.objects.update_or_create(email=spec.email, defaults={"name": spec.name, "role": spec.role})
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        people.append(user)
    by_email = {user.email: user for user in people}
    for name, manager_email in DEMO_TEAMS.items():
        Team.objects.update_or_create(name=name, defaults={"manager": by_email.get(manager_email)})
    teams = {team.name: team for team in Team.objects.filter(name__in=DEMO_TEAMS)}
    for spec in DEMO_PEOPLE:
        user = by_email[spec.email]
        user.team = teams.get(spec.team) if spec.team else None
        user.save(update_fields=["team"])
        if (
            spec.role in (Role.FINANCE, Role.ADMIN)
            and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
        ):
            TOTP.activate(user, DEMO_TOTP_SECRET)
    return people


def current_demo_totp_code(*, at_counter: int | None = None) -> str:
    import time

    from allauth.mfa import app_settings

    counter = at_counter if at_counter is not None else int(time.time()) // app_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(DEMO_TOTP_SECRET, counter))
