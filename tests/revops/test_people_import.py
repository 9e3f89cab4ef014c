"""CSV import of people and teams: upsert by email, all-or-nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from revops.models import Role, Team, User
from revops.people_import import import_people
from revops.tabular import ImportRejected
from tests.factories import TEST_PASSWORD, TeamFactory, UserFactory
from tests.import_helpers import EXAMPLES, csv_file, example
from tests.import_helpers import rejected as rejected_by

pytestmark = pytest.mark.django_db

HEADER = "email,name,role,team,manager_email"


def rejected(stream) -> list[dict]:
    return rejected_by(import_people, stream)


def test_example_people_file_imports_people_teams_and_managers():
    report = import_people(example("people"))

    assert report.summary == {
        "created": 6,
        "updated": 0,
        "unchanged": 0,
        "teams_created": 2,
        "team_managers_set": 2,
    }
    assert list(User.objects.order_by("email").values_list("email", "role", "team__name")) == [
        ("diego.ramos@example.com", "ae", "Enterprise Sales"),
        ("lena.fischer@example.com", "csm", "Customer Success"),
        ("maya.chen@example.com", "leader", "Enterprise Sales"),
        ("priya.nair@example.com", "ae", "Enterprise Sales"),
        ("sam.okafor@example.com", "csm", "Customer Success"),
        ("tom.baker@example.com", "finance", None),
    ]
    # Lena is named as manager on the line before her own.
    assert dict(Team.objects.values_list("name", "manager__email")) == {
        "Customer Success": "lena.fischer@example.com",
        "Enterprise Sales": "maya.chen@example.com",
    }


def test_imported_people_cannot_log_in_until_a_password_is_set():
    import_people(example("people"))

    assert [user.has_usable_password() for user in User.objects.all()] == [False] * 6


def test_reimporting_the_people_file_changes_nothing():
    import_people(example("people"))

    report = import_people(example("people"))

    assert report.summary == {
        "created": 0,
        "updated": 0,
        "unchanged": 6,
        "teams_created": 0,
        "team_managers_set": 0,
    }


def test_a_stored_person_is_updated_by_email_and_keeps_their_password():
    person = UserFactory(email="sam.okafor@example.com", name="Sam O.", role=Role.AE)

    report = import_people(csv_file(HEADER, "Sam.Okafor@Example.com,Sam Okafor,Customer success manager,,"))

    assert (report.summary["created"], report.summary["updated"]) == (0, 1)
    person.refresh_from_db()
    assert (person.name, person.role, person.team) == ("Sam Okafor", "csm", None)
    assert person.check_password(TEST_PASSWORD)


def test_a_stored_team_is_matched_whatever_its_case_and_a_stored_person_can_manage_it():
    team = TeamFactory(name="Enterprise Sales")
    boss = UserFactory(email="boss@example.com", role=Role.LEADER)

    report = import_people(csv_file(HEADER, "new.ae@example.com,New AE,ae,enterprise sales,BOSS@example.com"))

    assert (report.summary["teams_created"], report.summary["team_managers_set"]) == (0, 1)
    team.refresh_from_db()
    assert team.manager == boss
    assert User.objects.get(email="new.ae@example.com").team == team


def test_without_a_team_column_stored_teams_are_kept():
    team = TeamFactory(name="West")
    person = UserFactory(email="will@example.com", team=team, role=Role.AE)

    report = import_people(csv_file("email,name,role", "will@example.com,Will West,csm"))

    assert report.summary["updated"] == 1
    person.refresh_from_db()
    assert (person.role, person.team) == ("csm", team)


def test_a_bad_row_in_the_middle_rejects_the_whole_file():
    errors = rejected(
        csv_file(
            HEADER,
            "a@example.com,Ann,ae,East,",
            "b@example,Bob,ae,East,",
            "c@example.com,Cy,ae,East,",
        )
    )

    assert errors == [{"line": 3, "column": "email", "reason": "'b@example' is not an email address"}]
    assert (User.objects.count(), Team.objects.count()) == (0, 0)


def test_every_problem_of_every_row_is_reported():
    errors = rejected(
        csv_file(
            HEADER,
            "a@example.com,,boss,East,",
            "a@example.com,Ann again,ae,,x@example.com",
            "c@example.com,Cy,ae,East,ghost@example.com",
            "d@example.com,Di,ae,East,c@example.com",
        )
    )

    assert errors == [
        {"line": 2, "column": "name", "reason": "is required"},
        {"line": 2, "column": "role", "reason": "'boss' is not one of ae, csm, leader, finance, product, admin"},
        {"line": 3, "column": "email", "reason": "a@example.com appears twice (first on line 2)"},
        {"line": 3, "column": "manager_email", "reason": "names a team manager, but the row has no team"},
        {
            "line": 4,
            "column": "manager_email",
            "reason": "ghost@example.com is not a person in this file or in the database",
        },
        {
            "line": 5,
            "column": "manager_email",
            "reason": "c@example.com conflicts with line 4, which makes ghost@example.com the manager of East",
        },
    ]


def test_a_byte_order_mark_and_windows_line_ends_are_fine():
    stream = io.BytesIO(b"\xef\xbb\xbfEmail,Name,Role\r\nann@example.com,Ann,AE\r\n")

    report = import_people(stream)

    assert report.summary["created"] == 1
    assert User.objects.get().role == "ae"


def test_a_semicolon_separated_file_is_rejected():
    errors = rejected(csv_file("email;name;role", "ann@example.com;Ann;ae"))

    assert errors == [{"line": 1, "column": "", "reason": "the columns are separated by semicolons; use commas"}]


def test_import_people_command_prints_the_counts():
    out = io.StringIO()

    call_command("import_people", str(EXAMPLES / "people.csv"), stdout=out)

    assert out.getvalue() == ("People: 6 created, 0 updated, 0 unchanged; 2 teams created, 2 team managers set.\n")


def test_import_people_command_prints_each_problem_and_fails(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email,name\nann@example.com,Ann\n")
    err = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_people", str(path), stderr=err)

    assert err.getvalue() == "line 1, column role: is a required column but is missing from the header\n"


def test_only_an_admin_changes_a_role_through_an_import():
    finance = UserFactory(role=Role.FINANCE, email="finance@example.com", name="Finn Ance")
    admin = UserFactory(role=Role.ADMIN, email="root@example.com", name="Ada Min")
    file = csv_file(
        HEADER,
        "finance@example.com,Finn Ance,admin,,",
        "root@example.com,Ada Min,ae,,",
        "new.admin@example.com,New Admin,admin,,",
        "new.ae@example.com,New Ae,ae,,",
    )

    with pytest.raises(ImportRejected) as caught:
        import_people(file, by=finance)

    assert caught.value.report.errors == [
        {
            "line": 2,
            "column": "role",
            "reason": "only an admin can change a role: finance@example.com is finance / deal desk, the file says admin",
        },
        {
            "line": 3,
            "column": "role",
            "reason": "only an admin can change a role: root@example.com is administrator, the file says ae",
        },
        {"line": 4, "column": "role", "reason": "only an admin can make someone an admin (new.admin@example.com)"},
    ]
    assert (User.objects.get(pk=finance.pk).role, User.objects.get(pk=admin.pk).role) == (Role.FINANCE, Role.ADMIN)
    assert not User.objects.filter(email__startswith="new.").exists()

    file.seek(0)
    assert import_people(file, by=admin).summary["updated"] == 2
    assert User.objects.get(pk=finance.pk).role == Role.ADMIN


def test_finance_keeps_importing_people_without_role_changes():
    finance = UserFactory(role=Role.FINANCE, email="finance@example.com", name="Finn Ance")
    UserFactory(role=Role.AE, email="ae@example.com", name="Old Name")

    report = import_people(
        csv_file(HEADER, "ae@example.com,New Name,ae,Sales,", "csm@example.com,Casey,csm,,"), by=finance
    )

    assert (report.summary["created"], report.summary["updated"]) == (1, 1)


def test_the_payroll_employee_id_is_imported_and_kept_when_the_column_is_absent():
    import io

    from revops.models import User
    from revops.people_import import import_people

    import_people(io.BytesIO(b"email,name,role,employee_id\nava@example.test,Ava,ae,E-1001\n"))
    import_people(io.BytesIO(b"email,name,role\nava@example.test,Ava Exec,ae\n"))

    ava = User.objects.get(email="ava@example.test")
    assert (ava.name, ava.employee_id) == ("Ava Exec", "E-1001")
