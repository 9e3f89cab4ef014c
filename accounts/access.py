"""Which customer accounts a person may see, decided on the server.

Every page, partial, export and API call that shows an account fetches it through
``accounts_visible_to`` (or ``account_for``), so an account outside a person's scope is
a 404 whatever URL is typed.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import Account, Ownership
from revops.access import people_in_scope, sees_company
from revops.models import Role

# Roles that read every account's usage (product managers study adoption across customers).
ALL_ACCOUNTS_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN, Role.PRODUCT})


def owned_account_ids(*, people: QuerySet, on: dt.date, roles: list[str] | None = None) -> set[int]:
    """Accounts ``people`` own on ``on`` (in ``roles``, default any), with every division below them."""
    current = Ownership.objects.filter(person__in=people, start_on__lte=on).filter(
        Q(end_on__isnull=True) | Q(end_on__gte=on)
    )
    if roles:
        current = current.filter(role__in=roles)
    return subtree_ids(current.values_list("account_id", flat=True))


def subtree_ids(accounts) -> set[int]:
    """The accounts and every division below them (any depth)."""
    found = set(accounts)
    frontier = set(found)
    while frontier:
        frontier = set(Account.objects.filter(parent_id__in=frontier).values_list("id", flat=True)) - found
        found |= frontier
    return found


def accounts_visible_to(user, *, on: dt.date) -> QuerySet[Account]:
    """Accounts ``user`` may see: everything for company-wide and product roles; otherwise
    those they or the people they manage own on ``on`` (and their divisions)."""
    if not user.is_authenticated or not user.is_active:
        return Account.objects.none()
    if sees_company(user) or user.role in ALL_ACCOUNTS_ROLES:
        return Account.objects.all()
    return Account.objects.filter(pk__in=owned_account_ids(people=people_in_scope(user), on=on))


def account_for(user, external_id: str, *, on: dt.date) -> Account:
    """The account, if ``user`` may see it; 404 otherwise (never 403: no existence leak)."""
    try:
        return accounts_visible_to(user, on=on).get(external_id=external_id)
    except Account.DoesNotExist:
        raise Http404("No such account.") from None
