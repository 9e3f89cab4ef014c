"""Plan documents: the importer (parse, validate, apply all-or-nothing), the command, the pages."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.urls import reverse

from accounts.models import Account, Segment
from comp.models import Assignment, LedgerLine, LineKind, Plan, PlanVersion
from comp.plans import PlansRejected, describe, plan_yaml, plans_import
from revops.models import Role

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "plans.yaml"

# The issue's example, exactly as written there.
ISSUE_YAML = b"""\
plans:
  - name: Land FY26
    type: land
    effective_from: 2026-01-01
    base_rate: "0.10"
    accelerators: [{above_attainment: "1.00", multiplier: "1.5"}]
    schedule:
      - {at_day: 0, share: "0.5"}
      - {at_day: 90, share: "0.5", burn_floor: "0.25"}
    clawback: {at_day: 365, burn_floor: "0.40", mode: hard}
assignments:
  - {email: ae@example.com, plan: Land FY26, start: 2026-01-01, end: 2026-12-31, quota: "1000000", quota_period: quarter}
"""
# What the run engine reads: canonical decimal strings, integer days, the defaults filled in.
LAND_PARAMETERS = {
    "base_rate": "0.1",
    "accelerators": [{"above_attainment": "1", "multiplier": "1.5"}],
    "schedule": [{"at_day": 0, "share": "0.5"}, {"at_day": 90, "share": "0.5", "burn_floor": "0.25"}],
    "recheck": "monthly",
    "clawback": {"at_day": 365, "burn_floor": "0.4", "mode": "hard"},
    "quota_credit": {"basis": "committed_arr"},
}
LAND_V2 = ISSUE_YAML.replace(b"effective_from: 2026-01-01", b"effective_from: 2026-07-01").replace(
    b'base_rate: "0.10"', b'base_rate: "0.12"'
)


@pytest.fixture
def seller(make_user):
    return make_user(Role.AE, email="ae@example.com", name="Avery Exec")


@pytest.fixture
def finance(make_user, with_totp):
    user = make_user(Role.FINANCE, name="Fran Finance")
    with_totp(user)
    return user


def run(document: bytes | str, filename: str = "plans.yaml", **kwargs):
    data = document.encode() if isinstance(document, str) else document
    return plans_import(data=data, filename=filename, **kwargs)


def problems(document: bytes | str, filename: str = "plans.yaml") -> list[str]:
    with pytest.raises(PlansRejected) as caught:
        run(document, filename)
    return caught.value.report.messages()


def land(**fields: str) -> str:
    """A land plan document; ``fields`` replace whole lines of the plan (YAML text)."""
    lines = {
        "name": "Land FY26",
        "type": "land",
        "effective_from": "2026-01-01",
        "base_rate": '"0.10"',
        "accelerators": '[{above_attainment: "1.00", multiplier: "1.5"}]',
        "schedule": '[{at_day: 0, share: "0.5"}, {at_day: 90, share: "0.5", burn_floor: "0.25"}]',
        "clawback": '{at_day: 365, burn_floor: "0.40", mode: hard}',
    } | fields
    body = "\n".join(f"    {key}: {value}" for key, value in lines.items() if value is not None)
    return f"plans:\n  - {body.lstrip()}\n"


# --- Importing -----------------------------------------------------------------------------


def test_the_issue_example_imports_as_written(seller, finance):
    report = run(ISSUE_YAML, user=finance)

    assert report.summary == {
        "plans_created": 1,
        "versions_created": 1,
        "assignments_created": 1,
        "versions_unchanged": 0,
        "assignments_unchanged": 0,
    }
    version = PlanVersion.objects.get()
    assert (version.plan.name, version.plan.type, version.version) == ("Land FY26", "land", 1)
    assert version.effective_from == dt.date(2026, 1, 1)
    assert version.parameters == LAND_PARAMETERS
    assert (version.source, version.created_by) == ("plans.yaml", finance)
    a = Assignment.objects.get()
    assert (a.person, a.plan, a.start_on, a.end_on) == (
        seller,
        version.plan,
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
    )
    assert (a.quota, a.quota_period, a.ramp_relief) == (Decimal("1000000"), "quarter", ["0.25", "0.5", "0.75", "1"])


def test_a_json_document_imports_to_the_same_parameters(seller):
    document = yaml.safe_load(ISSUE_YAML)
    document["plans"][0]["effective_from"] = "2026-01-01"
    document["assignments"][0] |= {"start": "2026-01-01", "end": "2026-12-31"}

    report = run(json.dumps(document, indent=2), filename="plans.json")

    assert report.summary["versions_created"] == 1
    assert PlanVersion.objects.get().parameters == LAND_PARAMETERS
    assert Assignment.objects.get().quota == Decimal("1000000")


def test_json_is_recognised_by_its_content_when_the_name_says_nothing(seller):
    document = yaml.safe_load(ISSUE_YAML)
    document["plans"][0]["effective_from"] = "2026-01-01"
    document["assignments"] = []

    assert run(json.dumps(document), filename="upload").summary["versions_created"] == 1


def test_a_json_number_for_an_amount_is_refused_quoting_it_as_written():
    document = json.dumps({"plans": [yaml.safe_load(land())["plans"][0] | {"effective_from": "2026-01-01"}]})
    document = document.replace('"base_rate": "0.10"', '"base_rate": 0.10')

    assert problems(document, "plans.json") == [
        'plans[0].base_rate: write decimals as strings ("0.10"), not numbers, so no float ever reaches money'
    ]


def test_every_type_of_the_example_document_imports(make_user):
    for email in ("ae@example.com", "riley.chen@example.com", "sam.patel@example.com", "csm@example.com"):
        make_user(Role.AE, email=email)
    for n in range(1, 6):
        Account.objects.create(external_id=f"DEMO-{n:04d}", name=f"Demo {n}", segment=Segment.MID_MARKET)

    report = run(EXAMPLE.read_bytes())

    assert report.summary == {
        "plans_created": 6,
        "versions_created": 7,
        "assignments_created": 7,
        "versions_unchanged": 0,
        "assignments_unchanged": 0,
    }
    assert sorted(Plan.objects.values_list("type", flat=True)) == ["cs", "draw", "expand", "land", "pilot", "spiff"]
    by_name = {v.plan.name: v for v in PlanVersion.objects.select_related("plan").order_by("effective_from")}
    assert by_name["Land FY26"].version == 2
    assert by_name["Land FY26"].parameters["quota_credit"] == {
        "basis": "estimate",
        "milestones": [{"at_day": 60, "share": "0.5"}, {"at_day": 90, "share": "0.5"}],
    }
    assert by_name["Expand FY26"].parameters == {
        "rate": "0.11",
        "tiers": [
            {"above_attainment": "1", "multiplier": "1.5"},
            {"above_attainment": "1.25", "multiplier": "2"},
            {"above_attainment": "1.5", "multiplier": "3"},
        ],
        "credit_split_months": 12,
    }
    assert by_name["Usage SPIFFs FY26"].parameters == {
        "new_workload": "3000",
        "new_region": "2000",
        "new_sku_rate": "0.05",
        "recommit_rate": "0.01",
    }
    assert by_name["CS NRR FY26"].parameters == {
        "target_bonus": "5000",
        "curve": [{"nrr": "0.9", "payout": "0"}, {"nrr": "1", "payout": "1"}, {"nrr": "1.2", "payout": "1.5"}],
    }
    assert by_name["Mid-market expansion pilot H1"].parameters == {
        "rate": "0.06",
        "accounts": ["DEMO-0001", "DEMO-0002", "DEMO-0003", "DEMO-0004", "DEMO-0005"],
        "window": {"start": "2026-01-01", "end": "2026-06-30"},
        "comparison": "segment",
    }
    assert by_name["New logo draw"].parameters == {"monthly_amount": "3000", "months": 6, "recoverable": True}
    # Every plan's download is a document that re-imports to no changes.
    for plan in Plan.objects.all():
        again = run(plan_yaml(plan), filename=f"{plan.pk}.yaml").summary
        assert (again["versions_created"], again["assignments_created"], again["plans_created"]) == (0, 0, 0)
    assert (PlanVersion.objects.count(), Assignment.objects.count()) == (7, 7)


def test_re_importing_the_same_document_changes_nothing(seller):
    run(ISSUE_YAML)
    before = list(PlanVersion.objects.values())

    report = run(ISSUE_YAML)

    assert report.summary == {
        "plans_created": 0,
        "versions_created": 0,
        "assignments_created": 0,
        "versions_unchanged": 1,
        "assignments_unchanged": 1,
    }
    assert list(PlanVersion.objects.values()) == before
    assert Assignment.objects.count() == 1


def test_the_same_values_spelled_differently_are_the_same_version(seller):
    run(ISSUE_YAML)

    # "0.1" is "0.10", "1" is "1.00": the canonical form makes them one version.
    report = run(ISSUE_YAML.replace(b'"0.10"', b'"0.1"').replace(b'"1.00"', b'"1"'))

    assert report.summary["versions_unchanged"] == 1


def test_a_new_effective_from_makes_version_2_and_leaves_version_1_alone(seller):
    run(ISSUE_YAML)
    v1 = PlanVersion.objects.get()
    v1_row = PlanVersion.objects.filter(pk=v1.pk).values().get()

    report = run(LAND_V2)

    assert report.summary["versions_created"] == 1 and report.summary["plans_created"] == 0
    v2 = PlanVersion.objects.get(version=2)
    assert (v2.plan_id, v2.effective_from, v2.parameters["base_rate"]) == (v1.plan_id, dt.date(2026, 7, 1), "0.12")
    assert PlanVersion.objects.filter(pk=v1.pk).values().get() == v1_row
    # The overlapping assignment in LAND_V2 is the same one: unchanged, not a clash.
    assert report.summary["assignments_unchanged"] == 1


def test_a_plan_version_cannot_be_updated_or_deleted(seller):
    run(ISSUE_YAML)
    version = PlanVersion.objects.get()

    with pytest.raises(DatabaseError, match="planversion_immutable"), transaction.atomic():
        PlanVersion.objects.filter(pk=version.pk).update(parameters={"base_rate": "0.5"})
    with pytest.raises(DatabaseError, match="planversion_immutable"), transaction.atomic():
        PlanVersion.objects.filter(pk=version.pk).delete()
    assert PlanVersion.objects.get().parameters == LAND_PARAMETERS


@pytest.mark.parametrize("table", ["comp_planversion", "comp_ledgerline"])
def test_the_append_only_tables_cannot_be_truncated_either(seller, table):
    from django.db import connection

    run(ISSUE_YAML)
    connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own pending FK checks first
    connection.cursor().execute("SET LOCAL revops.allow_truncate = off")  # as every production connection
    with pytest.raises(DatabaseError, match="cannot be truncated"), transaction.atomic():
        connection.cursor().execute(f"TRUNCATE {table} CASCADE")
    assert PlanVersion.objects.exists()


def test_one_bad_assignment_imports_nothing(seller):
    document = ISSUE_YAML + b"  - {email: ghost@example.com, plan: Land FY26, start: 2026-01-01}\n"

    assert problems(document) == ['assignments[1].email: "ghost@example.com" — no person with this email']
    assert (Plan.objects.count(), PlanVersion.objects.count(), Assignment.objects.count()) == (0, 0, 0)


def test_every_problem_is_listed_with_its_line(seller):
    document = land(base_rate="0.10", schedule='[{at_day: 0, share: "0.5", burn_floor: "0.1"}]') + (
        "assignments:\n  - {email: nobody@example.com, plan: Land FY26, start: 2026-01-01, quota_period: week}\n"
    )

    with pytest.raises(PlansRejected) as caught:
        run(document)

    assert caught.value.report.lines() == [
        'plans[0].base_rate: write decimals as strings ("0.10"), not numbers, so no float ever reaches money (line 5)',
        "plans[0].schedule[0].burn_floor: the share paid at signature (day 0) cannot have a burn floor (line 7)",
        'assignments[0].quota_period: "week" — must be one of month, quarter, year (line 10)',
    ]
    assert caught.value.message.startswith("Nothing was imported: 3 problem(s), the first: plans[0].base_rate")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"schedule": '[{at_day: 0, share: "0.5"}, {at_day: 90, share: "0.6", burn_floor: "0.25"}]'},
            'plans[0].schedule[1].share: "0.6" — shares add up to 1.1, they must add up to 1',
        ),
        (
            {"base_rate": "0.10"},
            'plans[0].base_rate: write decimals as strings ("0.10"), not numbers, so no float ever reaches money',
        ),
        (
            {"base_rate": "1000"},
            'plans[0].base_rate: write decimals as strings ("1000"), not numbers, so no float ever reaches money',
        ),
        ({"base_rate": '"ten"'}, "plans[0].base_rate: 'ten' is not a number (digits, optionally a point and decimals)"),
        ({"base_rate": '"1.5"'}, 'plans[0].base_rate: "1.5" — must be more than 0 and at most 1'),
        ({"base_rate": None}, "plans[0].base_rate: is required"),
        (
            {"base_rte": '"0.10"'},
            "plans[0].base_rte: is not a field of a land plan (the fields are name, type, effective_from, "
            "base_rate, accelerators, schedule, recheck, clawback, quota_credit, payment_basis, refund_clawback)",
        ),
        (
            {"schedule": '[{at_day: 0, share: "0.5", burn_floor: "0.25"}, {at_day: 90, share: "0.5"}]'},
            "plans[0].schedule[0].burn_floor: the share paid at signature (day 0) cannot have a burn floor",
        ),
        (
            {"schedule": '[{at_day: 90, share: "0.5"}, {at_day: 30, share: "0.5"}]'},
            "plans[0].schedule[1].at_day: 30 — days must go up: the entry before is at day 90",
        ),
        (
            {"schedule": '[{at_day: "90", share: "1"}]'},
            'plans[0].schedule[0].at_day: "90" — must be a whole number of days, written without quotes',
        ),
        (
            {
                "accelerators": '[{above_attainment: "1.00", multiplier: "1.5"}, {above_attainment: "1", multiplier: "2"}]'
            },
            'plans[0].accelerators[1].above_attainment: "1" — accelerators[0] has the same threshold',
        ),
        (
            {"accelerators": '[{above_attainment: "1.00", multiplier: "0.5"}]'},
            'plans[0].accelerators[0].multiplier: "0.5" — must be at least 1',
        ),
        (
            {"accelerators": '[{above_attainment: "0", multiplier: "2"}]'},
            'plans[0].accelerators[0].above_attainment: "0" — must be more than 0',
        ),
        (
            {"clawback": '{at_day: 60, burn_floor: "0.40", mode: hard}'},
            "plans[0].clawback.at_day: 60 — the clawback must come after the last payout (day 90)",
        ),
        (
            {"clawback": '{at_day: 365, burn_floor: "0.40", mode: gentle}'},
            'plans[0].clawback.mode: "gentle" — must be one of hard, soft',
        ),
        (
            {"quota_credit": '{basis: estimate, milestones: [{at_day: 60, share: "0.5"}]}'},
            'plans[0].quota_credit.milestones[0].share: "0.5" — shares add up to 0.5, they must add up to 1',
        ),
        ({"recheck": "weekly"}, 'plans[0].recheck: "weekly" — must be one of monthly'),
        ({"effective_from": "2026-02-30"}, "plans[0].effective_from: '2026-02-30' is not a date that exists"),
        ({"type": "bonus"}, 'plans[0].type: "bonus" — must be one of land, expand, spiff, cs, pilot, draw'),
    ],
)
def test_each_problem_has_a_precise_message(fields, expected):
    assert problems(land(**fields)) == [expected]
    assert not Plan.objects.exists()


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (
            "type: spiff, new_workload: null",
            "plans[0]: a SPIFF plan needs at least one of new_workload, new_region, new_sku_rate, recommit_rate",
        ),
        ('type: spiff, new_workload: "3000.001"', "plans[0].new_workload: 3000.001 has more than 2 decimal places"),
        (
            'type: pilot, rate: "0.06", accounts: [NOPE-1], window: {start: 2026-01-01, end: 2026-06-30}',
            'plans[0].accounts[0]: "NOPE-1" — no account with this external id',
        ),
        (
            'type: pilot, rate: "0.06", accounts: [acme], window: {start: 2026-06-30, end: 2026-01-01}',
            "plans[0].window.end: 2026-01-01 is before the start (2026-06-30)",
        ),
        ('type: draw, monthly_amount: "3000", months: 6', "plans[0].recoverable: nothing — must be true or false"),
        (
            'type: draw, monthly_amount: "3000", months: 0, recoverable: true',
            "plans[0].months: 0 — must be from 1 to 60",
        ),
        (
            'type: cs, target_bonus: "5000", curve: [{nrr: "1.0", payout: "1"}, {nrr: "0.9", payout: "0"}]',
            'plans[0].curve[1].nrr: "0.9" — NRR points must go up: the point before is at 1',
        ),
        (
            'type: expand, rate: "0.10", tiers: [], credit_split_months: 12.5',
            'plans[0].credit_split_months: "12.5" — must be a whole number of months, written without quotes',
        ),
    ],
)
def test_each_plan_type_checks_its_parameters(plan, expected):
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)

    assert problems(f"plans:\n  - {{name: P, effective_from: 2026-01-01, {plan}}}\n") == [expected]


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        (
            "{email: ae@example.com, plan: Nope, start: 2026-01-01}",
            'assignments[0].plan: "Nope" — no plan with this name in the document or stored',
        ),
        (
            "{email: ae@example.com, plan: Land FY26, start: 2025-12-01}",
            "assignments[0].start: 2025-12-01 is before the plan's first version (from 2026-01-01); the plan has no terms then",
        ),
        (
            "{email: ae@example.com, plan: Land FY26, start: 2026-03-01, end: 2026-02-01}",
            "assignments[0].end: 2026-02-01 is before the start (2026-03-01)",
        ),
        (
            '{email: ae@example.com, plan: Land FY26, start: 2026-01-01, ramp_relief: ["0.5", "1"]}',
            "assignments[0].ramp_relief: has 2 values; give 4, one per quarter of tenure",
        ),
        (
            '{email: ae@example.com, plan: Land FY26, start: 2026-01-01, ramp_relief: ["0.5", "1", "1", "1.5"]}',
            'assignments[0].ramp_relief[3]: "1.5" — must be at least 0 and at most 1',
        ),
        (
            "{email: ae@example.com, plan: Land FY26, start: 2026-01-01, quota: -5}",
            'assignments[0].quota: write decimals as strings ("-5"), not numbers, so no float ever reaches money',
        ),
        (
            '{email: ae@example.com, plan: Land FY26, start: 2026-01-01, quota: "-5"}',
            "assignments[0].quota: -5 is negative; it must be zero or more",
        ),
        (
            "{email: ae@example.com, plan: Land FY26, start: 2026-01-01, team: east}",
            "assignments[0].team: is not a field of an assignment (the fields are email, plan, start, end, quota, "
            "quota_period, ramp_relief)",
        ),
    ],
)
def test_each_assignment_problem_has_a_precise_message(seller, assignment, expected):
    assert problems(land() + f"assignments:\n  - {assignment}\n") == [expected]


def test_overlapping_assignments_in_one_document_are_refused(seller):
    document = land() + (
        "assignments:\n"
        "  - {email: ae@example.com, plan: Land FY26, start: 2026-01-01, end: 2026-06-30}\n"
        "  - {email: ae@example.com, plan: Land FY26, start: 2026-06-01}\n"
    )

    assert problems(document) == [
        "assignments[1]: ae@example.com is already on Land FY26 for these dates in assignments[0]; "
        "assignments may not overlap"
    ]


def test_an_assignment_overlapping_a_stored_one_is_refused(seller):
    run(ISSUE_YAML)

    document = 'assignments:\n  - {email: AE@example.com, plan: Land FY26, start: 2026-06-01, quota: "5"}\n'

    assert problems(document) == [
        "assignments[0]: ae@example.com is already on Land FY26 from 2026-01-01 to 2026-12-31 (stored, quota "
        "1000000 per quarter); a person's assignments to one plan may not overlap, and an import does not "
        "change stored assignments"
    ]


def test_consecutive_assignments_are_fine(seller):
    run(ISSUE_YAML)

    report = run("assignments:\n  - {email: ae@example.com, plan: Land FY26, start: 2027-01-01}\n")

    assert report.summary["assignments_created"] == 1


def test_the_same_effective_from_with_other_parameters_is_refused(seller):
    run(ISSUE_YAML)

    assert problems(ISSUE_YAML.replace(b'base_rate: "0.10"', b'base_rate: "0.12"')) == [
        "plans[0].effective_from: version from 2026-01-01 exists with other parameters; "
        "give the new version a later effective_from"
    ]


def test_a_version_before_the_latest_one_is_refused(seller):
    run(ISSUE_YAML)
    run(LAND_V2)

    document = land(effective_from="2026-04-01", base_rate='"0.11"')

    assert problems(document) == [
        "plans[0].effective_from: 2026-04-01 is before the latest version (v2 from 2026-07-01); "
        "a new version must start after it, so nothing computed changes"
    ]


def test_a_version_starting_in_a_computed_month_is_refused(seller):
    run(ISSUE_YAML)
    LedgerLine.objects.create(
        person=seller,
        period=dt.date(2026, 3, 1),
        plan_version=PlanVersion.objects.get(),
        kind=LineKind.COMMISSION,
        key="deal:1:signature",
        amount=Decimal("100"),
    )

    assert problems(land(effective_from="2026-03-15", base_rate='"0.11"')) == [
        "plans[0].effective_from: 2026-03-15 falls in months already computed under this plan (ledger lines up "
        "to 2026-03); start the new version on 2026-04-01 or later"
    ]
    assert run(land(effective_from="2026-04-01", base_rate='"0.11"')).summary["versions_created"] == 1


def test_a_plan_keeps_its_type(seller):
    run(ISSUE_YAML)

    document = 'plans:\n  - {name: Land FY26, type: draw, effective_from: 2026-07-01, monthly_amount: "1", months: 1, recoverable: true}\n'

    assert problems(document) == [
        'plans[0].type: "draw" — the plan Land FY26 is a land plan; a plan\'s type never changes, give a new plan '
        "another name"
    ]


def test_two_versions_of_a_new_plan_in_one_document_are_numbered_by_date(seller):
    report = run(land(effective_from="2026-07-01", base_rate='"0.12"') + land()[len("plans:\n") :])

    assert report.summary == {
        "plans_created": 1,
        "versions_created": 2,
        "assignments_created": 0,
        "versions_unchanged": 0,
        "assignments_unchanged": 0,
    }
    assert list(PlanVersion.objects.order_by("version").values_list("version", "effective_from")) == [
        (1, dt.date(2026, 1, 1)),
        (2, dt.date(2026, 7, 1)),
    ]


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (
            b"plans: [\n  {name: x\n",
            "p.yaml",
            "is not valid YAML: expected ',' or '}', but got '<stream end>' (line 3)",
        ),
        (b'{"plans": [}', "p.json", "is not valid JSON: Expecting value (line 1)"),
        (b"", "p.yaml", "the document is empty; it needs plans: and/or assignments:"),
        (b"- a\n- b\n", "p.yaml", "must be a mapping with the fields of a plan document (plans, assignments) (line 1)"),
        (b"\xff\xfe", "p.yaml", "the file is not UTF-8 text"),
    ],
)
def test_an_unreadable_document_says_why(data, filename, expected):
    with pytest.raises(PlansRejected) as caught:
        plans_import(data=data, filename=filename)

    assert caught.value.report.lines() == [expected]


def test_a_land_version_reads_as_a_sentence():
    assert "; ".join(describe("land", LAND_PARAMETERS)) == (
        "10% of committed ARR; 1.5× above 100% attainment; 50% at signature, 50% at day 90 if burn ≥ 25%; "
        "held shares re-checked monthly until day 365; clawback at day 365 if burn < 40% (hard)"
    )
    assert describe("draw", {"monthly_amount": "3000", "months": 6, "recoverable": True}) == [
        "$3,000 a month for 6 months",
        "recovered against later commission",
    ]


# --- The command ---------------------------------------------------------------------------


def test_the_command_prints_a_summary(seller, tmp_path, capsys):
    path = tmp_path / "plans.yaml"
    path.write_bytes(ISSUE_YAML)

    call_command("import_plans", str(path))
    call_command("import_plans", str(path))

    assert capsys.readouterr().out.splitlines() == [
        "Plans: 1 created; versions: 1 created, 0 unchanged; assignments: 1 created, 0 unchanged.",
        "Plans: 0 created; versions: 0 created, 1 unchanged; assignments: 0 created, 1 unchanged.",
    ]


def test_the_command_lists_every_problem_and_fails(tmp_path, capsys):
    path = tmp_path / "plans.yaml"
    path.write_bytes(ISSUE_YAML)

    with pytest.raises(
        CommandError, match=r"^Nothing was imported: 1 problem\(s\), the first: assignments\[0\]\.email"
    ):
        call_command("import_plans", str(path))

    assert capsys.readouterr().err.splitlines() == [
        'assignments[0].email: "ae@example.com" — no person with this email (line 12)'
    ]
    assert not Plan.objects.exists()


# --- The pages -------------------------------------------------------------------------------


def _urls(plan_id: int) -> list[str]:
    return [
        reverse("comp:plans"),
        reverse("comp:plan_detail", args=[plan_id]),
        reverse("comp:plan_upload"),
        reverse("comp:plan_download", args=[plan_id]),
    ]


def test_an_ae_gets_403_on_every_plan_page(client, seller):
    run(ISSUE_YAML)
    client.force_login(seller)

    for url in _urls(Plan.objects.get().pk):
        assert client.get(url).status_code == 403, url
    response = client.post(reverse("comp:plan_upload"), {"file": SimpleUploadedFile("p.yaml", LAND_V2)})
    assert response.status_code == 403
    assert PlanVersion.objects.count() == 1


def test_a_leader_reads_plans_but_cannot_import(client, make_user, seller):
    run(ISSUE_YAML)
    client.force_login(make_user(Role.LEADER))
    plan = Plan.objects.get()

    assert client.get(reverse("comp:plans")).status_code == 200
    assert client.get(reverse("comp:plan_detail", args=[plan.pk])).status_code == 200
    assert client.get(reverse("comp:plan_upload")).status_code == 403


def test_finance_sees_the_plans_list_and_a_plan_readably(client, finance, seller, django_assert_max_num_queries):
    run(ISSUE_YAML)
    run(LAND_V2)
    plan = Plan.objects.get()
    client.force_login(finance)

    with django_assert_max_num_queries(12):
        listing = client.get(reverse("comp:plans")).content.decode()
    detail = client.get(reverse("comp:plan_detail", args=[plan.pk])).content.decode()

    assert "v1 from 2026-01-01 · v2 from 2026-07-01" in listing
    assert re.search(r'<td class="num">1</td>', listing)  # one assignment
    assert (
        "10% of committed ARR; 1.5× above 100% attainment; 50% at signature, 50% at day 90 if burn ≥ 25%; "
        "held shares re-checked monthly until day 365; clawback at day 365 if burn &lt; 40% (hard)."
    ) in detail
    assert "12% of committed ARR" in detail
    assert "Avery Exec" in detail and "$1,000,000" in detail and "Quarterly" in detail
    assert "25% / 50% / 75% / 100%" in detail
    assert 'href="/comp/plans/"' in listing and ">Comp</a>" in listing  # the nav item


def test_the_upload_imports_a_document(client, finance, seller):
    client.force_login(finance)

    response = client.post(reverse("comp:plan_upload"), {"file": SimpleUploadedFile("land.yaml", ISSUE_YAML)})

    assert response.status_code == 302 and response["Location"] == reverse("comp:plans")
    version = PlanVersion.objects.get()
    assert (version.created_by, version.source) == (finance, "land.yaml")
    page = client.get(response["Location"]).content.decode()
    assert "land.yaml imported: 1 plan(s) created, 1 version(s) created (0 unchanged)" in page


def test_the_upload_lists_the_problems(client, finance):
    client.force_login(finance)
    bad = ISSUE_YAML.replace(b'share: "0.5", burn', b'share: "0.6", burn')

    page = client.post(reverse("comp:plan_upload"), {"file": SimpleUploadedFile("land.yaml", bad)}).content.decode()

    assert "Nothing was imported" in page
    assert "<code>plans[0].schedule[1].share</code>" in page
    assert "&quot;0.6&quot; — shares add up to 1.1, they must add up to 1" in page
    assert "<code>assignments[0].email</code>" in page and "no person with this email" in page
    assert not Plan.objects.exists()


def test_the_downloaded_yaml_re_imports_to_no_changes(client, finance, seller):
    run(ISSUE_YAML)
    run(LAND_V2)
    plan = Plan.objects.get()
    client.force_login(finance)

    response = client.get(reverse("comp:plan_download", args=[plan.pk]))

    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="land-fy26.yaml"'
    document = yaml.safe_load(response.content)
    assert [v["effective_from"] for v in document["plans"]] == [dt.date(2026, 1, 1), dt.date(2026, 7, 1)]
    assert run(response.content).summary == {
        "plans_created": 0,
        "versions_created": 0,
        "assignments_created": 0,
        "versions_unchanged": 2,
        "assignments_unchanged": 1,
    }


@pytest.mark.browser
def test_plan_pages_in_the_browser(logged_in_page, make_user, with_totp, seller):
    from playwright.sync_api import expect

    from tests.browser import screenshot

    run(ISSUE_YAML)
    run(LAND_V2)
    finance = make_user(Role.FINANCE, name="Fran Finance")
    page = logged_in_page(finance, totp_code=with_totp(finance))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Comp").click()

    expect(page.get_by_role("heading", name="Compensation plans")).to_be_visible()
    screenshot(page, "comp-plans")
    page.get_by_role("link", name="Land FY26").click()
    expect(page.get_by_text("50% at signature, 50% at day 90 if burn ≥ 25%").first).to_be_visible()
    screenshot(page, "comp-plan-detail")


ALIAS_BOMB = (
    b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    b"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    b"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    b"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"plans: [" + b"1," * 150_000 + b"1]\n", "big.yaml", "is too large for a plan document: 20,001 values"),
        (b'{"plans": [' + b"1," * 150_000 + b"1]}", "big.json", "is too large for a plan document: 20,001 values"),
        (ALIAS_BOMB, "bomb.yaml", "is too large for a plan document: more than 200,000 values"),
        (b"plans: " + b"[" * 40 + b"]" * 40 + b"\n", "deep.yaml", "42 values nested 41 deep"),
        (b"plans: &p [*p]\n", "loop.yaml", "is too large for a plan document"),
    ],
    ids=["huge-list-yaml", "huge-list-json", "alias-bomb", "deep", "recursive-alias"],
)
def test_a_document_too_large_to_check_is_refused_at_once(data, filename, expected):
    started = time.monotonic()
    with pytest.raises(PlansRejected) as caught:
        plans_import(data=data, filename=filename)

    assert time.monotonic() - started < 5
    [line] = caught.value.report.lines()
    assert expected in line and "at most 20,000 values, 32 levels" in line
