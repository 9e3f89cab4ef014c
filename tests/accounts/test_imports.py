"""CSV imports of accounts, contracts and owners: upsert by natural key, all-or-nothing."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.imports import import_accounts, import_contracts, import_owners
from accounts.models import Account, Contract, Ownership
from revops.people_import import import_people
from revops.tabular import ImportRejected
from tests.conftest import worker_database_url
from tests.import_helpers import EXAMPLES, csv_file, example, rejected

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS_HEADER = "external_id,name,parent_external_id,segment,region,industry,status"
CONTRACTS_HEADER = (
    "external_id,account,pricing_model,signed_on,start_on,end_on,committed_arr,tcv,"
    "included_units,base_fee,credits,deal_desk_estimate,ae_estimate,ramp_days,amends"
)
OWNERS_HEADER = "account,email,role,start_on,end_on"


@pytest.fixture
def people():
    import_people(example("people"))


@pytest.fixture
def accounts():
    import_accounts(example("accounts"))


@pytest.fixture
def contracts(accounts):
    import_contracts(example("contracts"))


def parents() -> dict[str, str | None]:
    return dict(Account.objects.values_list("external_id", "parent__external_id"))


# --- Accounts ---------------------------------------------------------------------------


def test_example_accounts_import_with_their_hierarchy():
    report = import_accounts(example("accounts"))

    assert report.summary == {"created": 8, "updated": 0, "unchanged": 0}
    # acme-eu comes before its parent in the file.
    assert parents() == {
        "acme": None,
        "acme-eu": "acme",
        "acme-logistics": "acme",
        "brightline": None,
        "copperleaf": None,
        "dunmore": None,
        "evergreen": None,
        "fjord": None,
    }
    # "Mid-Market", "mid-market" and "SMB" are stored as the canonical values.
    assert dict(Account.objects.values_list("external_id", "segment")) == {
        "acme": "enterprise",
        "acme-eu": "enterprise",
        "acme-logistics": "enterprise",
        "brightline": "mid-market",
        "copperleaf": "mid-market",
        "dunmore": "smb",
        "evergreen": "smb",
        "fjord": "mid-market",
    }
    assert Account.objects.get(external_id="evergreen").status == "churned"


def test_reimporting_the_accounts_file_changes_nothing(accounts):
    report = import_accounts(example("accounts"))

    assert report.summary == {"created": 0, "updated": 0, "unchanged": 8}


def test_accounts_are_updated_by_external_id(accounts):
    report = import_accounts(
        csv_file(
            ACCOUNTS_HEADER,
            "acme,Acme Corporation,,Enterprise,NA,Manufacturing,active",
            "fjord,Fjord Analytics AB,acme,SMB,EMEA,Software,",
            "new-co,New Co,fjord,smb,,,",
        )
    )

    assert report.summary == {"created": 1, "updated": 1, "unchanged": 1}
    fjord = Account.objects.get(external_id="fjord")
    # A blank status is the default, active.
    assert (fjord.name, fjord.segment, fjord.parent.external_id, fjord.status) == (
        "Fjord Analytics AB",
        "smb",
        "acme",
        "active",
    )
    assert Account.objects.get(external_id="new-co").parent == fjord


def test_an_optional_column_missing_from_the_header_keeps_stored_values(accounts):
    report = import_accounts(csv_file("external_id,name,segment", "acme-eu,Acme EU,enterprise"))

    assert report.summary == {"created": 0, "updated": 1, "unchanged": 0}
    acme_eu = Account.objects.get(external_id="acme-eu")
    assert (acme_eu.name, acme_eu.parent.external_id, acme_eu.region, acme_eu.status) == (
        "Acme EU",
        "acme",
        "EMEA",
        "active",
    )


def test_a_blank_parent_detaches_a_division(accounts):
    import_accounts(csv_file(ACCOUNTS_HEADER, "acme-eu,Acme Europe,,Enterprise,EMEA,Manufacturing,active"))

    assert parents()["acme-eu"] is None


def test_a_bad_row_in_the_middle_rejects_the_whole_file():
    errors = rejected(
        import_accounts,
        csv_file(
            ACCOUNTS_HEADER,
            "a1,Alpha,,enterprise,,,",
            "a2,Beta,,large,,,",
            "a3,Gamma,,smb,,,",
        ),
    )

    assert errors == [{"line": 3, "column": "segment", "reason": "'large' is not one of enterprise, mid-market, smb"}]
    assert Account.objects.count() == 0


def test_every_bad_row_is_counted_and_the_first_thousand_listed():
    rows = [f"x{i},X {i},,gigantic,,," for i in range(1005)]

    with pytest.raises(ImportRejected) as caught:
        import_accounts(csv_file(ACCOUNTS_HEADER, *rows))

    report = caught.value.report
    assert (report.error_count, len(report.errors)) == (1005, 1000)
    assert report.errors[-1]["line"] == 1001
    assert report.lines()[-1] == "… and 5 more problems"


def test_a_wrong_header_is_rejected_before_any_row():
    errors = rejected(import_accounts, csv_file("external_id,name,segmnt", "a1,Alpha,smb"))

    assert errors == [
        {
            "line": 1,
            "column": "segmnt",
            "reason": "is not a known column (expected external_id, name, segment, parent_external_id, region, industry, status)",
        },
        {"line": 1, "column": "segment", "reason": "is a required column but is missing from the header"},
    ]


def test_header_names_are_case_insensitive_and_a_byte_order_mark_is_skipped():
    stream = io.BytesIO(b"\xef\xbb\xbfExternal_ID,Name,SEGMENT\r\na1,Alpha,Mid-Market\r\n")

    report = import_accounts(stream)

    assert report.summary == {"created": 1, "updated": 0, "unchanged": 0}
    assert Account.objects.get().segment == "mid-market"


def test_a_semicolon_separated_file_is_rejected():
    errors = rejected(import_accounts, csv_file("external_id;name;segment", "a1;Alpha;smb"))

    assert errors == [{"line": 1, "column": "", "reason": "the columns are separated by semicolons; use commas"}]


def test_a_header_without_rows_is_rejected():
    errors = rejected(import_accounts, csv_file(ACCOUNTS_HEADER))

    assert errors == [{"line": 2, "column": "", "reason": "the file has a header but no rows"}]


def test_a_row_with_too_many_fields_is_reported():
    errors = rejected(import_accounts, csv_file("external_id,name,segment", "a1,Alpha,smb", "a2,Acme, Inc.,smb"))

    assert errors == [{"line": 3, "column": "", "reason": "has 4 fields, the header has 3"}]


def test_text_that_is_not_utf8_is_rejected_with_its_line():
    stream = io.BytesIO(b"external_id,name,segment\na1,Alpha,smb\na2,Caf\xe9,smb\n")

    errors = rejected(import_accounts, stream)

    assert errors == [{"line": 3, "column": "", "reason": "is not valid UTF-8 text"}]


def test_a_cycle_of_parents_in_the_file_is_rejected_on_every_row_of_it():
    errors = rejected(
        import_accounts,
        csv_file(
            ACCOUNTS_HEADER,
            "a,A,c,smb,,,",
            "b,B,a,smb,,,",
            "c,C,b,smb,,,",
            "d,D,a,smb,,,",
        ),
    )

    # d hangs off the cycle but is not on it.
    assert errors == [
        {"line": 2, "column": "parent_external_id", "reason": "makes a cycle of parents: a → c → b → a"},
        {"line": 3, "column": "parent_external_id", "reason": "makes a cycle of parents: b → a → c → b"},
        {"line": 4, "column": "parent_external_id", "reason": "makes a cycle of parents: c → b → a → c"},
    ]
    assert Account.objects.count() == 0


def test_a_cycle_through_stored_accounts_is_rejected(accounts):
    # Stored: acme-eu's parent is acme. Making acme a child of acme-eu closes the loop.
    errors = rejected(import_accounts, csv_file(ACCOUNTS_HEADER, "acme,Acme Corporation,acme-eu,enterprise,,,"))

    assert errors == [
        {"line": 2, "column": "parent_external_id", "reason": "makes a cycle of parents: acme → acme-eu → acme"}
    ]
    assert parents()["acme"] is None


def test_an_account_cannot_be_its_own_parent():
    errors = rejected(import_accounts, csv_file(ACCOUNTS_HEADER, "a,A,a,smb,,,"))

    assert errors == [{"line": 2, "column": "parent_external_id", "reason": "an account cannot be its own parent"}]


def test_an_unknown_parent_and_a_repeated_external_id_are_reported():
    errors = rejected(
        import_accounts,
        csv_file(ACCOUNTS_HEADER, "a,A,nope,smb,,,", "a,A again,,smb,,,"),
    )

    assert errors == [
        {
            "line": 2,
            "column": "parent_external_id",
            "reason": "unknown account 'nope' (not in this file or the database)",
        },
        {"line": 3, "column": "external_id", "reason": "a appears twice (first on line 2)"},
    ]


@pytest.mark.slow
def test_twenty_thousand_accounts_import_with_a_handful_of_queries(django_assert_max_num_queries):
    # 4,000 parents with 4 children each, every child listed before its parent.
    rows = [f"big-{i},Big {i},{f'big-{i // 5 * 5}' if i % 5 else ''},smb,EMEA,Software,active" for i in range(20_000)]
    stream = csv_file(ACCOUNTS_HEADER, *reversed(rows))

    # Savepoint, 2 reads, id allocation, 10 insert batches of 2,000, release.
    with django_assert_max_num_queries(16):
        report = import_accounts(stream)

    assert report.summary == {"created": 20_000, "updated": 0, "unchanged": 0}
    assert Account.objects.filter(parent__isnull=False).count() == 16_000
    assert Account.objects.get(external_id="big-19999").parent.external_id == "big-19995"


# --- Contracts --------------------------------------------------------------------------


def test_example_contracts_import_with_every_pricing_model(accounts):
    report = import_contracts(example("contracts"))

    assert report.summary == {"created": 6, "updated": 0, "unchanged": 0}
    assert sorted(Contract.objects.values_list("pricing_model", flat=True)) == [
        "commit",
        "commit",
        "credits",
        "hybrid",
        "hybrid",
        "minimum",
    ]
    renewal = Contract.objects.get(external_id="C-1002")
    # C-1002 amends C-1001, which comes after it in the file.
    assert (renewal.amends.external_id, renewal.account.external_id, renewal.ramp_days) == ("C-1001", "acme", 60)
    assert (renewal.committed_arr, renewal.tcv) == (Decimal("300000.00"), Decimal("600000.00"))
    hybrid = Contract.objects.get(external_id="C-2001")
    assert (hybrid.included_units, hybrid.base_fee, hybrid.credits) == (Decimal("2000000"), Decimal("5000.00"), None)
    credits = Contract.objects.get(external_id="C-3001")
    # A blank ramp_days is the default, 90 days.
    assert (credits.credits, credits.ramp_days, credits.start_on) == (Decimal("120000.00"), 90, dt.date(2026, 6, 1))


def test_reimporting_the_contracts_file_changes_nothing(contracts):
    report = import_contracts(example("contracts"))

    assert report.summary == {"created": 0, "updated": 0, "unchanged": 6}


def test_contracts_are_updated_by_external_id(contracts):
    report = import_contracts(
        csv_file(
            CONTRACTS_HEADER,
            "C-4001,copperleaf,minimum,2026-01-30,2026-02-01,2029-01-31,60000.00,180000.00,,,,48000.00,55000.00,120,",
            "C-4002,copperleaf,commit,2026-11-20,2026-12-01,2027-11-30,75000,75000,,,,,,,C-4001",
        )
    )

    assert report.summary == {"created": 1, "updated": 1, "unchanged": 0}
    assert Contract.objects.get(external_id="C-4001").committed_arr == Decimal("60000.00")
    assert Contract.objects.get(external_id="C-4002").amends.external_id == "C-4001"


def test_a_hybrid_contract_needs_included_units_and_a_base_fee(accounts):
    errors = rejected(
        import_contracts,
        csv_file(CONTRACTS_HEADER, "C-9,acme,hybrid,2026-01-01,2026-01-01,2026-12-31,60000,60000,,5000,,,,,"),
    )

    assert errors == [{"line": 2, "column": "included_units", "reason": "is required for hybrid contracts"}]
    assert Contract.objects.count() == 0


def test_a_credits_contract_needs_credits_even_without_the_column(accounts):
    errors = rejected(
        import_contracts,
        csv_file(
            "external_id,account,pricing_model,signed_on,start_on,end_on,committed_arr,tcv",
            "C-9,acme,credits,2026-01-01,2026-01-01,2026-12-31,1000,1000",
        ),
    )

    assert errors == [
        {"line": 2, "column": "credits", "reason": "is required for credits contracts (the file has no credits column)"}
    ]


def test_money_with_three_decimals_is_rejected_not_rounded(accounts):
    errors = rejected(
        import_contracts,
        csv_file(CONTRACTS_HEADER, "C-9,acme,commit,2026-01-01,2026-01-01,2026-12-31,1000.005,1000,,,,,,,"),
    )

    assert errors == [{"line": 2, "column": "committed_arr", "reason": "1000.005 has more than 2 decimal places"}]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-100", "-100 is negative; it must be zero or more"),
        ("1e5", "'1e5' is not a number (digits, optionally a point and decimals)"),
        ('"1,000.00"', "'1,000.00' has thousands separators; write it as 1000.00"),
        ("$100", "'$100' is not a number (digits, optionally a point and decimals)"),
        ("NaN", "'NaN' is not a number (digits, optionally a point and decimals)"),
        ("123456789012345", "123456789012345 is too large (at most 14 digits before the decimal point)"),
    ],
)
def test_money_must_be_a_plain_non_negative_decimal(accounts, value, reason):
    errors = rejected(
        import_contracts,
        csv_file(CONTRACTS_HEADER, f"C-9,acme,commit,2026-01-01,2026-01-01,2026-12-31,1000,{value},,,,,,,"),
    )

    assert errors == [{"line": 2, "column": "tcv", "reason": reason}]


def test_dates_must_be_iso_and_exist_and_end_after_start(accounts):
    errors = rejected(
        import_contracts,
        csv_file(
            CONTRACTS_HEADER,
            "C-1,acme,commit,01/02/2026,2026-01-01,2026-12-31,1000,1000,,,,,,,",
            "C-2,acme,commit,2026-01-01,2026-02-30,2026-12-31,1000,1000,,,,,,,",
            "C-3,acme,commit,2026-01-01,2026-06-01,2026-05-31,1000,1000,,,,,,,",
        ),
    )

    assert errors == [
        {"line": 2, "column": "signed_on", "reason": "'01/02/2026' is not a date in YYYY-MM-DD form"},
        {"line": 3, "column": "start_on", "reason": "'2026-02-30' is not a date that exists"},
        {"line": 4, "column": "end_on", "reason": "2026-05-31 is before start_on (2026-06-01)"},
    ]


def test_unknown_account_pricing_model_and_amended_contract_are_reported(accounts):
    errors = rejected(
        import_contracts,
        csv_file(
            CONTRACTS_HEADER,
            "C-1,acme,commit,2026-01-01,2026-01-01,2026-12-31,1000,1000,,,,,,,",
            "C-2,initech,commit,2026-01-01,2026-01-01,2026-12-31,1000,1000,,,,,,,",
            "C-3,acme,usage,2026-01-01,2026-01-01,2026-12-31,1000,1000,,,,,,,",
            "C-4,acme,commit,2026-01-01,2026-01-01,2026-12-31,1000,1000,,,,,,,C-0",
        ),
    )

    assert errors == [
        {"line": 3, "column": "account", "reason": "unknown account 'initech'"},
        {"line": 4, "column": "pricing_model", "reason": "'usage' is not one of commit, hybrid, credits, minimum"},
        {"line": 5, "column": "amends", "reason": "unknown contract 'C-0' (not in this file or the database)"},
    ]
    assert Contract.objects.count() == 0


def test_a_cycle_of_amendments_is_rejected(contracts):
    # Stored: C-1002 amends C-1001. C-1001 amending C-1002 would close the loop.
    errors = rejected(
        import_contracts,
        csv_file(CONTRACTS_HEADER, "C-1001,acme,commit,2024-12-16,2025-01-01,2025-12-31,1,1,,,,,,,C-1002"),
    )

    assert errors == [
        {"line": 2, "column": "amends", "reason": "makes a cycle of amendments: C-1001 → C-1002 → C-1001"}
    ]


def test_ramp_days_must_be_a_whole_number_in_range(accounts):
    errors = rejected(
        import_contracts,
        csv_file(
            CONTRACTS_HEADER,
            "C-1,acme,commit,2026-01-01,2026-01-01,2026-12-31,1000,1000,,,,,,45.5,",
            "C-2,acme,commit,2026-01-01,2026-01-01,2026-12-31,1000,1000,,,,,,5000,",
        ),
    )

    assert errors == [
        {"line": 2, "column": "ramp_days", "reason": "'45.5' is not a whole number"},
        {"line": 3, "column": "ramp_days", "reason": "5000 is out of range (0 to 3660)"},
    ]


# --- Owners -----------------------------------------------------------------------------


def owners_of(account: str, role: str) -> list[tuple[str, dt.date, dt.date | None]]:
    return list(
        Ownership.objects.filter(account__external_id=account, role=role)
        .order_by("start_on")
        .values_list("person__email", "start_on", "end_on")
    )


def test_example_owners_import(people, accounts):
    report = import_owners(example("owners"))

    assert report.summary == {"created": 11, "updated": 0, "unchanged": 0}
    assert owners_of("acme", "csm") == [
        ("sam.okafor@example.com", dt.date(2025, 1, 1), dt.date(2026, 6, 30)),
        ("lena.fischer@example.com", dt.date(2026, 7, 1), None),
    ]


def test_reimporting_the_owners_file_changes_nothing(people, accounts):
    import_owners(example("owners"))

    report = import_owners(example("owners"))

    assert report.summary == {"created": 0, "updated": 0, "unchanged": 11}


def test_a_handover_shortens_the_stored_period_and_adds_the_next_in_one_file(people, accounts):
    import_owners(csv_file(OWNERS_HEADER, "fjord,diego.ramos@example.com,land_ae,2026-10-01,"))

    # Written in the order the overlap trigger accepts: the shortened period first.
    report = import_owners(
        csv_file(
            OWNERS_HEADER,
            "fjord,priya.nair@example.com,land_ae,2026-12-01,",
            "fjord,DIEGO.RAMOS@example.com,land_ae,2026-10-01,2026-11-30",
        )
    )

    assert report.summary == {"created": 1, "updated": 1, "unchanged": 0}
    assert owners_of("fjord", "land_ae") == [
        ("diego.ramos@example.com", dt.date(2026, 10, 1), dt.date(2026, 11, 30)),
        ("priya.nair@example.com", dt.date(2026, 12, 1), None),
    ]


def test_overlapping_periods_in_the_file_are_reported_on_each_later_row(people, accounts):
    errors = rejected(
        import_owners,
        csv_file(
            OWNERS_HEADER,
            "fjord,diego.ramos@example.com,land_ae,2026-01-01,2026-06-30",
            "fjord,priya.nair@example.com,land_ae,2026-06-30,2026-09-30",
            "fjord,priya.nair@example.com,csm,2026-06-30,",
            "fjord,lena.fischer@example.com,land_ae,2026-08-01,",
        ),
    )

    assert errors == [
        {
            "line": 3,
            "column": "start_on",
            "reason": "overlaps line 2: diego.ramos@example.com as land_ae of fjord from 2026-01-01 to 2026-06-30",
        },
        {
            "line": 5,
            "column": "start_on",
            "reason": "overlaps line 3: priya.nair@example.com as land_ae of fjord from 2026-06-30 to 2026-09-30",
        },
    ]
    assert Ownership.objects.count() == 0


def test_a_period_overlapping_a_stored_one_is_reported_not_left_to_the_trigger(people, accounts):
    import_owners(example("owners"))

    errors = rejected(import_owners, csv_file(OWNERS_HEADER, "acme,sam.okafor@example.com,csm,2024-06-01,2025-03-31"))

    assert errors == [
        {
            "line": 2,
            "column": "end_on",
            "reason": "overlaps the stored period: sam.okafor@example.com as csm of acme from 2025-01-01 to 2026-06-30",
        }
    ]
    assert Ownership.objects.count() == 11


def test_unknown_account_person_and_role_are_reported(people, accounts):
    errors = rejected(
        import_owners,
        csv_file(
            OWNERS_HEADER,
            "initech,diego.ramos@example.com,land_ae,2026-01-01,",
            "acme,nobody@example.com,csm,2027-01-01,",
            "acme,diego.ramos@example.com,sdr,2026-01-01,",
            "acme,diego.ramos@example.com,land_ae,2026-01-01,2025-01-01",
        ),
    )

    assert errors == [
        {"line": 2, "column": "account", "reason": "unknown account 'initech'"},
        {
            "line": 3,
            "column": "email",
            "reason": "nobody@example.com is not a person in the database (import people first)",
        },
        {"line": 4, "column": "role", "reason": "'sdr' is not one of land_ae, expand_ae, csm"},
        {"line": 5, "column": "end_on", "reason": "2025-01-01 is before start_on (2026-01-01)"},
    ]


# --- Management commands ----------------------------------------------------------------


def test_import_accounts_command_prints_the_counts(tmp_path):
    out = io.StringIO()

    call_command("import_accounts", str(EXAMPLES / "accounts.csv"), stdout=out)

    assert out.getvalue() == "Accounts: 8 created, 0 updated, 0 unchanged.\n"


def test_import_contracts_command_lists_every_problem_on_stderr(tmp_path, accounts):
    path = tmp_path / "contracts.csv"
    path.write_text(
        CONTRACTS_HEADER
        + "\nC-1,acme,hybrid,2026-01-01,2026-01-01,2026-12-31,1,1,,,,,,,"
        + "\nC-2,acme,commit,2026-01-01,2026-01-01,2026-12-31,1.001,1,,,,,,,\n"
    )
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^Nothing was imported: 3 problem\(s\), the first on line 2"):
        call_command("import_contracts", str(path), stderr=err)

    assert err.getvalue().splitlines() == [
        "line 2, column included_units: is required for hybrid contracts",
        "line 2, column base_fee: is required for hybrid contracts",
        "line 3, column committed_arr: 1.001 has more than 2 decimal places",
    ]
    assert Contract.objects.count() == 0


def test_import_owners_command_says_when_the_file_is_missing(tmp_path):
    with pytest.raises(CommandError, match="No such file or directory"):
        call_command("import_owners", str(tmp_path / "nope.csv"))


def test_a_rejected_file_exits_with_status_1_and_the_problems_on_stderr(tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(f"{ACCOUNTS_HEADER}\na,A,,smb,,,\nb,B,a,tiny,,,\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revops.settings.test", "DATABASE_URL": worker_database_url()}

    result = subprocess.run(
        [sys.executable, "manage.py", "import_accounts", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "line 3, column segment: 'tiny' is not one of enterprise, mid-market, smb\n" in result.stderr
    assert "CommandError: Nothing was imported: 1 problem(s), the first on line 3" in result.stderr
    assert result.stdout == ""
