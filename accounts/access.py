"""Which customer accounts a person may see, decided on the server.

Every page, partial, export and API call that shows an account fetches it through
``accounts_visible_to`` (or ``account_for``), so an account outside a person's scope is
a 404 whatever URL is typed.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404

from accounts.models import Account
from revops.access import people_in_scope, sees_company
from revops.models import Role

# Roles that read every account's usage (product managers study adoption across customers).
ALL_ACCOUNTS_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN, Role.PRODUCT})


OWNED_SUBTREE_SQL = """
    WITH RECURSIVE tree(id) AS (
        SELECT o.account_id FROM accounts_ownership o
        WHERE o.person_id = ANY(%s) AND o.start_on <= %s AND (o.end_on IS NULL OR o.end_on >= %s)
          AND (cardinality(%s::text[]) = 0 OR o.role = ANY(%s::text[]))
        UNION
        SELECT a.id FROM accounts_account a JOIN tree t ON a.parent_id = t.id
    )
    SELECT id FROM tree
"""


def owned_accounts(*, people, on: dt.date, roles: list[str] | None = None) -> QuerySet[Account]:
    """Accounts ``people`` own on ``on`` (in ``roles``, default any), with every division
    below them. A lazy queryset over one recursive subquery: a book of hundreds of
    accounts never travels as a list of ids through Python and back."""
    person_ids = list(people.values_list("pk", flat=True)) if isinstance(people, QuerySet) else list(people)
    roles = list(roles or [])
    # Constant SQL, every value bound as a parameter.
    return Account.objects.filter(pk__in=RawSQL(OWNED_SUBTREE_SQL, [person_ids, on, on, roles, roles]))  # noqa: S611


def owned_account_ids(*, people, on: dt.date, roles: list[str] | None = None) -> set[int]:
    """The ids of ``owned_accounts`` (for callers that need them in Python)."""
    return set(owned_accounts(people=people, on=on, roles=roles).values_list("pk", flat=True))


def accounts_visible_to(user, *, on: dt.date) -> QuerySet[Account]:
    """Accounts ``user`` may see: everything for company-wide and product roles; otherwise
    those they or the people they manage own on ``on`` (and their divisions)."""
    if not user.is_authenticated or not user.is_active:
        return Account.objects.none()
    if sees_company(user) or user.role in ALL_ACCOUNTS_ROLES:
        return Account.objects.all()
    return owned_accounts(people=people_in_scope(user), on=on)


def account_for(user, external_id: str, *, on: dt.date) -> Account:
    """The account, if ``user`` may see it; 404 otherwise (never 403: no existence leak)."""
    try:
        return accounts_visible_to(user, on=on).get(external_id=external_id)
    except Account.DoesNotExist:
        raise Http404("No such account.") from None
