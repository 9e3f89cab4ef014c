"""Import people (users) and their teams from CSV: upsert by email, all-or-nothing.

Columns: ``email,name,role[,team][,manager_email]`` (see docs/imports.md). A team named
in the file is created when it does not exist (matched case-insensitively); a row's
``manager_email`` makes that person the manager of the row's team. New people get an
unusable password: they set one through password reset, or an admin sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower

from revops.models import Role, Team, User
from revops.tabular import ImportReport, Row, all_or_nothing, read_rows, reject_if_any

REQUIRED = ["email", "name", "role"]
OPTIONAL = ["team", "manager_email", "employee_id"]
# The role's value or its label, in any case: "ae", "Account executive".
ROLES = {value: value for value in Role.values} | {label.lower(): value for value, label in Role.choices}
EMAIL_MAX = User._meta.get_field("email").max_length
NAME_MAX = User._meta.get_field("name").max_length
TEAM_MAX = Team._meta.get_field("name").max_length


@dataclass
class _Person:
    line: int
    email: str
    name: str
    role: str
    team: str | None  # None: the file has no team column, so the stored team is kept
    employee_id: str | None = None  # None: no employee_id column, the stored one is kept


def _email(row: Row, column: str, *, required: bool) -> str:
    value = row.text(column, required=required, max_length=EMAIL_MAX).lower()
    if value:
        try:
            validate_email(value)
        except ValidationError:
            row.error(column, f"'{value}' is not an email address")
            return ""
    return value


@all_or_nothing
def import_people(stream: BinaryIO, *, by: User | None = None) -> ImportReport:
    """Create or update the people in the file, or raise ``ImportRejected`` having written nothing.

    ``by`` is the person importing (None: an operator at the command line). Only an admin
    changes a role or makes someone an admin; anyone else's file that would is refused,
    line by line, so nobody can promote themselves or demote an admin through a CSV.
    """
    _, rows, report = read_rows(stream, required=REQUIRED, optional=OPTIONAL)
    people: list[_Person] = []
    line_of_email: dict[str, int] = {}
    # Team (lower-cased name) -> (manager email, line that first said so).
    managers: dict[str, tuple[str, int]] = {}
    manager_refs: list[tuple[int, str]] = []
    team_spelling: dict[str, str] = {}
    for row in rows:
        email = _email(row, "email", required=True)
        name = row.text("name", required=True, max_length=NAME_MAX)
        role = row.choice("role", ROLES)
        team = row.text("team", max_length=TEAM_MAX) if row.has("team") else None
        manager_email = _email(row, "manager_email", required=False)
        employee_id = row.text("employee_id", max_length=64) if row.has("employee_id") else None
        if email in line_of_email:
            row.error("email", f"{email} appears twice (first on line {line_of_email[email]})")
        elif email:
            line_of_email[email] = row.line
        if team:
            team_spelling.setdefault(team.lower(), team)
        if manager_email and not team:
            row.error("manager_email", "names a team manager, but the row has no team")
        elif manager_email and team:
            manager_refs.append((row.line, manager_email))
            earlier = managers.setdefault(team.lower(), (manager_email, row.line))
            if earlier[0] != manager_email:
                row.error(
                    "manager_email",
                    f"{manager_email} conflicts with line {earlier[1]}, which makes {earlier[0]} the manager of {team}",
                )
        if row.ok:
            people.append(_Person(row.line, email, name, role, team, employee_id))

    # One query per table: the people (and managers) named, and the teams named.
    existing = {
        user.email.lower(): user
        for user in User.objects.annotate(email_ci=Lower("email")).filter(
            email_ci__in=set(line_of_email) | {email for _, email in manager_refs}
        )
    }
    if by is not None and by.role != Role.ADMIN:
        for person in people:
            user = existing.get(person.email)
            if user is not None and user.role != person.role:
                report.add(
                    person.line,
                    "role",
                    f"only an admin can change a role: {person.email} is {user.get_role_display().lower()}, "
                    f"the file says {person.role}",
                )
            elif user is None and person.role == Role.ADMIN:
                report.add(person.line, "role", f"only an admin can make someone an admin ({person.email})")
    for line, email in manager_refs:
        if email not in line_of_email and email not in existing:
            report.add(line, "manager_email", f"{email} is not a person in this file or in the database")
    reject_if_any(report)
    teams = {
        team.name.lower(): team
        for team in Team.objects.annotate(name_ci=Lower("name")).filter(name_ci__in=list(team_spelling))
    }

    new_teams = [Team(name=team_spelling[key]) for key in team_spelling if key not in teams]
    Team.objects.bulk_create(new_teams)
    teams.update({team.name.lower(): team for team in new_teams})

    created: list[User] = []
    changed: list[User] = []
    for person in people:
        team_id = teams[person.team.lower()].pk if person.team else None
        user = existing.get(person.email)
        if user is None:
            user = User(
                email=person.email,
                name=person.name,
                role=person.role,
                team_id=team_id,
                employee_id=person.employee_id or "",
            )
            user.password = make_password(None)  # unusable: password reset or an admin sets one
            created.append(user)
            continue
        before = (user.name, user.role, user.team_id, user.employee_id)
        user.name, user.role = person.name, person.role
        if person.team is not None:
            user.team_id = team_id
        if person.employee_id is not None:
            user.employee_id = person.employee_id
        if (user.name, user.role, user.team_id, user.employee_id) != before:
            changed.append(user)
    User.objects.bulk_create(created, batch_size=1000)
    User.objects.bulk_update(changed, ["name", "role", "team", "employee_id"], batch_size=1000)

    by_email = existing | {user.email: user for user in created}
    teams_updated = []
    for key, (manager_email, _) in managers.items():
        team, manager_id = teams[key], by_email[manager_email].pk
        if team.manager_id != manager_id:
            team.manager_id = manager_id
            teams_updated.append(team)
    Team.objects.bulk_update(teams_updated, ["manager"])

    report.summary = {
        "created": len(created),
        "updated": len(changed),
        "unchanged": len(people) - len(created) - len(changed),
        "teams_created": len(new_teams),
        # New teams that get a manager count here too: teams whose manager was set or changed.
        "team_managers_set": len(teams_updated),
    }
    return report
