"""Object-permission predicates (django-rules), shared by every app."""

from __future__ import annotations

import rules

from revops.access import sees_company
from revops.models import Role


@rules.predicate
def is_admin(user) -> bool:
    return bool(user.is_authenticated and user.role == Role.ADMIN)


@rules.predicate
def is_finance(user) -> bool:
    return bool(user.is_authenticated and user.role in (Role.FINANCE, Role.ADMIN))


@rules.predicate
def is_company_wide(user) -> bool:
    return sees_company(user)


@rules.predicate
def manages(user, person) -> bool:
    return bool(person is not None and person.team_id and person.team.manager_id == user.pk)


@rules.predicate
def is_self(user, person) -> bool:
    return person is not None and user.pk == person.pk


# Seeing a person's data (book, alerts, statements): themself, their manager, company-wide roles.
rules.add_perm("revops.view_person_data", is_self | manages | is_company_wide)
rules.add_perm("revops.view_people_directory", rules.is_authenticated)
rules.add_perm("revops.view_system_status", is_admin)
