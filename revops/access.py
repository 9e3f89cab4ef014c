"""Who may see what, decided on the server.

One helper per object type returns the queryset a user may see; every view, partial,
export and API endpoint fetches through these, so an object outside the queryset is a
404 whatever URL is typed. Later apps add their own helpers in their ``access`` module
and build on ``people_in_scope`` for "whose data is this person allowed to see".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from revops.models import Role, Team, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

# Roles that see every person's data (books, queues, statements).
COMPANY_WIDE_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN})


def sees_company(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role in COMPANY_WIDE_ROLES)


def teams_managed_by(user: User) -> QuerySet[Team]:
    return Team.objects.filter(manager=user)


def people_in_scope(user: User | AnonymousUser) -> QuerySet[User]:
    """People whose data (book, payouts, alerts) ``user`` may see.

    Company-wide roles see everyone; a team manager sees themself and their teams'
    members; anyone else sees only themself.
    """
    if not user.is_authenticated or not user.is_active:
        return User.objects.none()
    if sees_company(user):
        return User.objects.all()
    return User.objects.filter(Q(pk=user.pk) | Q(team__manager=user)).distinct()


def people_directory(user: User | AnonymousUser) -> QuerySet[User]:
    """People listed in the directory: everyone for company-wide roles and managers,
    otherwise one's own team (names and roles only, never their data)."""
    if not user.is_authenticated or not user.is_active:
        return User.objects.none()
    if sees_company(user) or teams_managed_by(user).exists():
        return User.objects.filter(is_active=True)
    if user.team_id is None:
        return User.objects.filter(pk=user.pk)
    return User.objects.filter(is_active=True, team_id=user.team_id)
