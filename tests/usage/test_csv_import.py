"""CSV import of usage events (manage.py import_usage): all-or-nothing, line-numbered, deduplicated.

The import streams the file into PostgreSQL with COPY, validates every row in one SQL pass
and stores a clean file with the same statement as the API, so most tests go through
``import_usage_stream`` and read what landed in the real tables.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import Account, Segment
from revops.tabular import ImportRejected
from tests.conftest import worker_database_url
from tests.usage.conftest import event
from usage.ingestion.csv_import import UsageImportResult, import_usage_stream
from usage.models import DailyRollup, FirstSeen, MeterTier, QuarantinedEvent, UsageEvent

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,account,meter,time,quantity"
T = "2026-11-02T08:15:00Z"
RECEIVED = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
RAW_TABLES = ("usage_event", "usage_eventkey", "usage_rollupdelta", "usage_quarantinedevent")


# --- Helpers --------------------------------------------------------------------------


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def import_rows(*rows: str, header: str = HEADER) -> UsageImportResult:
    return import_usage_stream(io.BytesIO(csv_bytes(*rows, header=header)), received_at=RECEIVED)


def problems(data: bytes) -> list[tuple[int, str, str]]:
    """The (line, column, reason) list of a refused file."""
    with pytest.raises(ImportRejected) as caught:
        import_usage_stream(io.BytesIO(data), received_at=RECEIVED)
    return [(e["line"], e["column"], e["reason"]) for e in caught.value.report.errors]


def raw_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in RAW_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed table names)
            counts[table] = cursor.fetchone()[0]
    return counts


NOTHING = dict.fromkeys(RAW_TABLES, 0)


def stored() -> dict[tuple[str, str], tuple[Decimal, dict]]:
    return {(e.source, e.event_id): (e.quantity, e.properties) for e in UsageEvent.objects.all()}


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def manage(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a subprocess against this run's test database."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def subprocess_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "DATABASE_URL": worker_database_url(),
        # The import schedules a rollup fold on commit: it goes to this test process's own
        # broker database (revops/settings/test.py), never to a worker's or make run's.
        "PYTHONUNBUFFERED": "1",
    }


# --- Clean files ----------------------------------------------------------------------


def test_a_clean_file_imports_every_row_with_exact_quantities(acme, meter):
    result = import_rows(
        "a,acme,api-calls,2026-11-02T08:15:00Z,412000",
        "b,acme,api-calls,2026-11-02T08:16:00+02:00,0.000001",
        "c,acme,api-calls,2026-11-02 23:59:59.5Z,1234567890123456789012.123456",
        "d,acme,api-calls,2026-11-03T00:00:00Z,+3400.5",
        " e , acme , api-calls , 2026-11-03T01:00:00Z , 0 ",
    )

    assert result == UsageImportResult(rows=5, accepted=5, duplicates=0, quarantined=0)
    assert {event_id: quantity for (_, event_id), (quantity, _) in stored().items()} == {
        "a": Decimal("412000"),
        "b": Decimal("0.000001"),
        "c": Decimal("1234567890123456789012.123456"),
        "d": Decimal("3400.5"),
        "e": Decimal("0"),
    }
    b = UsageEvent.objects.get(event_id="b")
    assert b.occurred_at == dt.datetime(2026, 11, 2, 6, 16, tzinfo=dt.UTC)
    assert (b.account_id, b.meter_id, b.received_at) == (acme.id, meter.id, RECEIVED)
    assert UsageEvent.objects.get(event_id="c").occurred_at == dt.datetime(
        2026, 11, 2, 23, 59, 59, 500000, tzinfo=dt.UTC
    )


def test_properties_come_from_the_properties_column_and_extra_columns_merged(acme, meter):
    header = "id,account,meter,time,quantity,properties,region,Workload"
    result = import_rows(
        f'a,acme,api-calls,{T},1,"{{""model"": ""large"", ""tokens"": 5}}",us-east,chat',
        f"b,acme,api-calls,{T},1,,eu-west,",
        f'c,acme,api-calls,{T},1,"{{""region"": ""from-json""}}",us-east,',
        f"d,acme,api-calls,{T},1,,,",
        header=header,
    )

    assert result.accepted == 4
    assert {event_id: properties for (_, event_id), (_, properties) in stored().items()} == {
        "a": {"model": "large", "tokens": 5, "region": "us-east", "workload": "chat"},
        "b": {"region": "eu-west"},  # a blank extra cell adds nothing
        "c": {"region": "from-json"},  # the properties JSON wins on a clash
        "d": {},
    }


def test_the_source_column_names_the_source_and_defaults_to_default(acme, meter):
    result = import_rows(
        f"a,acme,api-calls,{T},1,gateway",
        f"a,acme,api-calls,{T},2,",
        f"b,acme,api-calls,{T},3,  ",
        header=HEADER + ",source",
    )

    assert result == UsageImportResult(rows=3, accepted=3, duplicates=0, quarantined=0)
    assert set(stored()) == {("gateway", "a"), ("default", "a"), ("default", "b")}


def test_without_a_source_column_every_event_has_the_default_source(acme, meter):
    import_rows(f"a,acme,api-calls,{T},1")

    assert list(UsageEvent.objects.values_list("source", flat=True)) == ["default"]


def test_a_utf8_byte_order_mark_is_skipped(acme, meter):
    data = b"\xef\xbb\xbf" + csv_bytes(f"caf\u00e9-1,acme,api-calls,{T},2", header="ID,Account,Meter,Time,Quantity")

    result = import_usage_stream(io.BytesIO(data), received_at=RECEIVED)

    assert result.accepted == 1
    assert set(stored()) == {("default", "caf\u00e9-1")}


def test_windows_line_endings_and_quoted_fields_with_commas_work(acme, meter):
    data = (
        f'{HEADER},properties\r\na,acme,api-calls,{T},1,"{{""note"": ""x, y""}}"\r\nb,acme,api-calls,{T},2,\r\n'
    ).encode()

    result = import_usage_stream(io.BytesIO(data), received_at=RECEIVED)

    assert result.accepted == 2
    assert stored()[("default", "a")] == (Decimal(1), {"note": "x, y"})


def test_events_of_any_age_are_accepted_as_a_backfill(acme, meter):
    two_years_ago = timezone.now().replace(microsecond=0) - dt.timedelta(days=730)

    result = import_rows(f"old,acme,api-calls,{stamp(two_years_ago)},7")

    assert result.accepted == 1
    assert UsageEvent.objects.get(event_id="old").occurred_at == two_years_ago


# --- Refused files: the header and the file's shape ----------------------------------


def test_a_missing_required_column_is_refused_at_line_1():
    assert problems(b"id,account,meter,time\nx,acme,api-calls,2026-11-02T08:15:00Z\n") == [
        (1, "quantity", "is a required column but is missing from the header")
    ]


def test_a_column_named_twice_is_refused():
    assert problems(csv_bytes(f"x,acme,api-calls,{T},1,y", header=HEADER + ",ID")) == [
        (1, "id", "appears twice in the header")
    ]


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_not_separated_by_commas_is_refused_with_that_reason(delimiter, name):
    data = csv_bytes(delimiter.join(["x", "acme", "api-calls", T, "1"]), header=delimiter.join(HEADER.split(",")))

    assert problems(data) == [(1, "", f"the columns are separated by {name}; use commas")]


def test_a_header_only_file_is_refused():
    assert problems(csv_bytes()) == [(2, "", "the file has a header but no rows")]


def test_an_empty_file_is_refused():
    assert problems(b"") == [(1, "", "the file is empty or has no header line")]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (f"x,acme,api-calls,{T},1,surplus", "has more fields than the header"),
        ("x,acme,api-calls", "has fewer fields than the header"),
        ("", "has fewer fields than the header"),  # a blank line is a row with one empty field
    ],
)
@pytest.mark.parametrize("good_before", [2, 30_000], ids=["near-the-start", "past-1-MB"])
def test_a_row_with_the_wrong_number_of_fields_is_refused_with_its_line(acme, meter, row, reason, good_before):
    good = [f"e{i},acme,api-calls,{T},1" for i in range(good_before)]
    data = csv_bytes(*good, row, f"c,acme,api-calls,{T},1")

    assert problems(data) == [(good_before + 2, "", reason)]
    assert raw_counts() == NOTHING


@pytest.mark.parametrize("good_before", [1, 30_000], ids=["near-the-start", "past-1-MB"])
def test_invalid_utf8_in_a_row_is_refused_with_its_line(acme, meter, good_before):
    good = [f"e{i},acme,api-calls,{T},1" for i in range(good_before)]
    data = csv_bytes(*good, f"bad,acme,api-calls,{T},1", f"c,acme,api-calls,{T},1")

    assert problems(data.replace(b"bad,", b"b\xff\xfe,")) == [(good_before + 2, "", "is not valid UTF-8 text")]


def test_invalid_utf8_in_the_header_is_refused():
    assert problems(b"id,acc\xffount,meter,time,quantity\n") == [(1, "", "the file is not UTF-8 text")]


# --- Refused files: bad cells ---------------------------------------------------------


def test_every_bad_cell_is_reported_with_its_line_column_and_reason(acme, meter):
    header = HEADER + ",properties"
    data = csv_bytes(
        f"ok-1,acme,api-calls,{T},1,",  # line 2
        "naive,acme,api-calls,2026-11-20T10:00:00,1,",  # 3
        "feb30,acme,api-calls,2026-02-30T10:00:00Z,1,",  # 4
        f"neg,acme,api-calls,{T},-5,",  # 5
        f"nan,acme,api-calls,{T},NaN,",  # 6
        f"decimals,acme,api-calls,{T},1.1234567,",  # 7
        f"text,acme,api-calls,{T},12abc,",  # 8
        f'badjson,acme,api-calls,{T},1,"{{not json"',  # 9
        f'array,acme,api-calls,{T},1,"[1, 2]"',  # 10
        f",acme,api-calls,{T},1,",  # 11
        f"{'x' * 201},acme,api-calls,{T},1,",  # 12
        f"huge,acme,api-calls,{T},12345678901234567890123,",  # 13
        f"blank-refs, , ,{T},1,",  # 14
        "two,acme,api-calls,yesterday,,",  # 15
        f"ok-2,acme,api-calls,{T},1,",  # 16
        header=header,
    )

    found = problems(data)

    assert sorted(found) == sorted(
        [
            (3, "time", "'2026-11-20T10:00:00' has no time zone; add Z or an offset"),
            (4, "time", "'2026-02-30T10:00:00Z' is not a date that exists"),
            (5, "quantity", "-5 is negative; usage quantities must be zero or more"),
            (6, "quantity", "'NaN' is not a finite number"),
            (7, "quantity", "1.1234567 has more than 6 decimal places"),
            (8, "quantity", "'12abc' is not a number"),
            (9, "properties", "is not valid JSON"),
            (10, "properties", "must be a JSON object"),
            (11, "id", "is required"),
            (12, "id", "is longer than 200 characters"),
            (13, "quantity", "12345678901234567890123 is too large"),
            (14, "account", "is required"),
            (14, "meter", "is required"),
            (15, "time", "'yesterday' is not an RFC 3339 timestamp"),
            (15, "quantity", "is required"),
        ]
    )
    assert [line for line, _, _ in found] == sorted(line for line, _, _ in found)
    assert raw_counts() == NOTHING


@pytest.mark.django_db(transaction=True)
def test_one_bad_row_among_1000_good_ones_imports_nothing_and_names_its_line(acme, meter):
    rows = [f"e{i},acme,api-calls,{T},{i}" for i in range(1000)]
    rows[300:310] = [f"q{i},ghost,api-calls,{T},1" for i in range(10)]  # would be quarantined
    rows.insert(500, f"bad,acme,api-calls,{T},12x")  # the 501st row: line 502

    with pytest.raises(ImportRejected) as caught:
        import_usage_stream(io.BytesIO(csv_bytes(*rows)), received_at=RECEIVED)

    report = caught.value.report
    assert (report.error_count, report.errors) == (
        1,
        [{"line": 502, "column": "quantity", "reason": "'12x' is not a number"}],
    )
    assert (
        str(caught.value)
        == "Nothing was imported: 1 problem(s), the first on line 502 (quantity: '12x' is not a number)."
    )
    # Committed state (this test is not wrapped in a transaction): nothing at all was written.
    assert raw_counts() == NOTHING
    assert not DailyRollup.objects.exists()
    assert not FirstSeen.objects.exists()


def test_more_than_1000_problems_lists_1000_and_counts_them_all(acme, meter):
    data = csv_bytes(*(f"e{i},acme,api-calls,{T},-1" for i in range(1500)))

    with pytest.raises(ImportRejected) as caught:
        import_usage_stream(io.BytesIO(data), received_at=RECEIVED)

    report = caught.value.report
    assert report.error_count == 1500
    assert [e["line"] for e in report.errors] == list(range(2, 1002))
    assert report.lines()[-1] == "… and 500 more problems"
    assert len(report.lines()) == 1001


# --- Duplicates, quarantine, the API --------------------------------------------------


def test_importing_the_same_file_again_adds_nothing(acme, meter):
    rows = [f"e{i},acme,api-calls,{T},{i}.5" for i in range(20)]
    first = import_rows(*rows)
    counts = raw_counts()

    again = import_rows(*rows)

    assert first == UsageImportResult(rows=20, accepted=20, duplicates=0, quarantined=0)
    assert again == UsageImportResult(rows=20, accepted=0, duplicates=20, quarantined=0, already_imported_on=RECEIVED)
    assert raw_counts() == counts


def test_a_changed_file_with_already_stored_events_adds_only_the_new_ones(acme, meter):
    rows = [f"e{i},acme,api-calls,{T},{i}.5" for i in range(20)]
    import_rows(*rows)
    counts = raw_counts()

    again = import_rows(*reversed(rows), f"new,acme,api-calls,{T},4")

    assert again == UsageImportResult(rows=21, accepted=1, duplicates=20, quarantined=0)
    assert raw_counts()["usage_event"] == counts["usage_event"] + 1
    assert stored()[("default", "new")] == (Decimal(4), {})


def test_a_duplicate_inside_one_file_is_stored_once_and_the_first_occurrence_wins(acme, meter):
    result = import_rows(
        f"a,acme,api-calls,{T},5",
        f"b,acme,api-calls,{T},1",
        "a,acme,api-calls,2026-11-05T00:00:00Z,7",
        f"a,acme,api-calls,{T},9",
    )

    assert result == UsageImportResult(rows=4, accepted=2, duplicates=2, quarantined=0)
    assert stored() == {("default", "a"): (Decimal(5), {}), ("default", "b"): (Decimal(1), {})}
    assert UsageEvent.objects.get(event_id="a").occurred_at == dt.datetime(2026, 11, 2, 8, 15, tzinfo=dt.UTC)


def test_the_first_occurrence_wins_even_when_its_account_is_unknown(acme, meter):
    result = import_rows(f"a,ghost,api-calls,{T},5", f"a,acme,api-calls,{T},7")

    assert result == UsageImportResult(rows=2, accepted=0, duplicates=1, quarantined=1)
    assert stored() == {}
    assert list(QuarantinedEvent.objects.values_list("event_id", "quantity")) == [("a", Decimal(5))]


@pytest.mark.parametrize("column", ["account", "meter"])
def test_an_account_or_meter_over_200_characters_is_reported_with_its_line(acme, meter, column):
    refs = {"account": "acme", "meter": "api-calls", column: "x" * 201}

    assert problems(csv_bytes(f"a,{refs['account']},{refs['meter']},{T},1")) == [
        (2, column, "is longer than 200 characters")
    ]


def test_a_long_unknown_account_is_quarantined(acme, meter):
    result = import_rows(f"a,{'x' * 190},api-calls,{T},1")

    assert result.quarantined == 1


def test_unknown_account_or_meter_is_quarantined_with_the_reason(acme, meter):
    result = import_rows(
        f"x,ghost,api-calls,{T},1",
        f"y,acme,gpu-hours,{T},2",
        f"z,acme,api-calls,{T},3",
    )

    assert result == UsageImportResult(rows=3, accepted=1, duplicates=0, quarantined=2)
    assert dict(QuarantinedEvent.objects.values_list("event_id", "reason")) == {
        "x": "unknown account 'ghost'",
        "y": "unknown meter 'gpu-hours'",
    }
    assert set(stored()) == {("default", "z")}


def test_quarantined_events_are_replayed_exactly_once_when_their_account_exists(acme, meter):
    import_rows(
        f"x,ghost,api-calls,{T},1.25",
        "y,ghost,api-calls,2026-11-03T00:00:00Z,2",
        f"z,acme,api-calls,{T},3",
    )
    Account.objects.create(external_id="ghost", name="Ghost", segment=Segment.SMB)
    first, second = io.StringIO(), io.StringIO()

    call_command("replay_quarantine", stdout=first)
    call_command("replay_quarantine", stdout=second)

    assert first.getvalue() == "2 replayed, 0 were already stored, 0 still have an unknown account or meter.\n"
    assert second.getvalue() == "0 replayed, 0 were already stored, 0 still have an unknown account or meter.\n"
    assert not QuarantinedEvent.objects.exists()
    assert stored() == {
        ("default", "x"): (Decimal("1.25"), {}),
        ("default", "y"): (Decimal(2), {}),
        ("default", "z"): (Decimal(3), {}),
    }
    assert UsageEvent.objects.get(event_id="x").account.external_id == "ghost"


def test_an_event_sent_by_the_api_is_a_duplicate_in_a_later_csv(post_events, acme, meter):
    recent = stamp(timezone.now() - dt.timedelta(hours=1))
    body = post_events([event("a", time=recent), event("b", time=recent, source="gateway")]).json()
    assert body["accepted"] == 2

    result = import_rows(
        f"a,acme,api-calls,{recent},99,",
        f"b,acme,api-calls,{recent},99,gateway",
        f"b,acme,api-calls,{recent},99,",  # same id, another source: another event
        header=HEADER + ",source",
    )

    assert result == UsageImportResult(rows=3, accepted=1, duplicates=2, quarantined=0)
    assert stored()[("default", "a")] == (Decimal(1), {})
    assert stored()[("gateway", "b")] == (Decimal(1), {})


def test_an_event_imported_from_csv_is_a_duplicate_when_the_api_sends_it(post_events, acme, meter):
    recent = stamp(timezone.now() - dt.timedelta(hours=1))
    import_rows(f"a,acme,api-calls,{recent},4")

    body = post_events([event("a", time=recent, quantity=5)]).json()

    assert (body["accepted"], body["duplicates"]) == (0, 1)
    assert stored() == {("default", "a"): (Decimal(4), {})}


# --- The management command -----------------------------------------------------------


def test_the_command_prints_its_summary_and_folds_the_rollups(acme, meter, tmp_path):
    MeterTier.objects.filter(meter=meter).delete()
    MeterTier.objects.create(meter=meter, up_to=Decimal(1000), unit_price=Decimal("0.002"))
    MeterTier.objects.create(meter=meter, up_to=None, unit_price=Decimal("0.001"))
    path = tmp_path / "usage.csv"
    path.write_bytes(
        csv_bytes(
            "a,acme,api-calls,2026-10-01T10:00:00Z,600,chat",
            "b,acme,api-calls,2026-10-01T23:59:59Z,0.5,",
            "c,acme,api-calls,2026-10-02T00:00:00+02:00,100,",  # 2026-10-01 22:00 UTC
            "d,acme,api-calls,2026-10-02T08:00:00Z,600,search",
            "a,acme,api-calls,2026-10-03T08:00:00Z,1000,",  # duplicate of a
            "e,ghost,api-calls,2026-10-03T08:00:00Z,5,",  # quarantined
            "f,acme,api-calls,2026-11-01T00:00:00Z,10,",
            header=HEADER + ",workload",
        )
    )
    out, err = io.StringIO(), io.StringIO()

    call_command("import_usage", str(path), stdout=out, stderr=err)

    assert out.getvalue() == "7 rows: 5 accepted, 1 duplicates, 1 quarantined (unknown account or meter).\n"
    assert err.getvalue() == ""
    # Oct 1: 700.5 at 0.002 = 1.401; Oct 2: 700.5→1000 at 0.002 + 1000→1300.5 at 0.001 = 0.599 + 0.3005;
    # Nov 1 starts a new month: 10 at 0.002.
    rollups = {r.day: (r.quantity, r.revenue, r.event_count) for r in DailyRollup.objects.filter(account=acme)}
    assert rollups == {
        dt.date(2026, 10, 1): (Decimal("700.5"), Decimal("1.401"), 3),
        dt.date(2026, 10, 2): (Decimal(600), Decimal("0.8995"), 1),
        dt.date(2026, 11, 1): (Decimal(10), Decimal("0.02"), 1),
    }
    assert raw_counts()["usage_rollupdelta"] == 0
    assert set(FirstSeen.objects.values_list("kind", "value", "first_day")) == {
        ("meter", "api-calls", dt.date(2026, 10, 1)),
        ("workload", "chat", dt.date(2026, 10, 1)),
        ("workload", "search", dt.date(2026, 10, 2)),
    }


def test_the_command_says_when_the_same_file_was_already_imported(acme, meter, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_bytes(csv_bytes(f"a,acme,api-calls,{T},1", f"b,acme,api-calls,{T},2"))
    call_command("import_usage", str(path), stdout=io.StringIO())
    before = {r.pk: r.quantity for r in DailyRollup.objects.all()}
    out = io.StringIO()

    call_command("import_usage", str(path), stdout=out)

    assert re.fullmatch(
        r"This exact file was already imported on \d{4}-\d\d-\d\d \d\d:\d\d UTC: nothing was added \(2 rows\)\.\n",
        out.getvalue(),
    )
    assert {r.pk: r.quantity for r in DailyRollup.objects.all()} == before == {DailyRollup.objects.get().pk: Decimal(3)}


def test_the_command_refuses_a_bad_file_listing_every_problem_on_stderr(acme, meter, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_bytes(
        csv_bytes(
            f"a,acme,api-calls,{T},1",
            "b,acme,api-calls,2026-11-20T10:00:00,1",
            f"c,acme,api-calls,{T},-2",
            f",acme,api-calls,{T},1",
        )
    )
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("import_usage", str(path), stdout=out, stderr=err)

    assert err.getvalue().splitlines() == [
        "line 3, column time: '2026-11-20T10:00:00' has no time zone; add Z or an offset",
        "line 4, column quantity: -2 is negative; usage quantities must be zero or more",
        "line 5, column id: is required",
    ]
    assert str(caught.value) == (
        "Nothing was imported: 3 problem(s), the first on line 3"
        " (time: '2026-11-20T10:00:00' has no time zone; add Z or an offset)."
    )
    assert out.getvalue() == ""
    assert raw_counts() == NOTHING


def test_the_command_lists_1000_problems_then_how_many_more(acme, meter, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_bytes(csv_bytes(*(f"e{i},acme,api-calls,{T},abc" for i in range(1234))))
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^Nothing was imported: 1234 problem\(s\), the first on line 2 "):
        call_command("import_usage", str(path), stderr=err)

    lines = err.getvalue().splitlines()
    assert len(lines) == 1001
    assert lines[0] == "line 2, column quantity: 'abc' is not a number"
    assert lines[999] == "line 1001, column quantity: 'abc' is not a number"
    assert lines[1000] == "… and 234 more problems"


def test_the_command_says_when_the_file_does_not_exist(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_usage", str(tmp_path / "missing.csv"))


def test_the_command_exits_with_status_1_and_every_problem_on_stderr(tmp_path):
    path = tmp_path / "usage.csv"
    path.write_bytes(csv_bytes("a,acme,api-calls,2026-02-30T00:00:00Z,1", "b,acme,api-calls,2026-11-02T00:00:00Z,NaN"))

    done = manage("import_usage", str(path))

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "line 2, column time: '2026-02-30T00:00:00Z' is not a date that exists",
        "line 3, column quantity: 'NaN' is not a finite number",
        "CommandError: Nothing was imported: 2 problem(s), the first on line 2"
        " (time: '2026-02-30T00:00:00Z' is not a date that exists).",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_with_status_0_and_its_summary_on_stdout(acme, meter, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_bytes(csv_bytes(f"a,acme,api-calls,{T},1.5", f"b,acme,api-calls,{T},2", f"a,acme,api-calls,{T},3"))

    done = manage("import_usage", str(path))

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "3 rows: 2 accepted, 1 duplicates, 0 quarantined (unknown account or meter).\n"
    assert stored() == {("default", "a"): (Decimal("1.5"), {}), ("default", "b"): (Decimal(2), {})}
    rollup = DailyRollup.objects.get()
    assert (rollup.day, rollup.quantity, rollup.revenue, rollup.event_count) == (
        dt.date(2026, 11, 2),
        Decimal("3.5"),
        Decimal("0.0035"),
        2,
    )


# --- Memory stays bounded whatever the file's size -----------------------------------

BIG_ROWS = 3_000_000


def write_big_usage_csv(path: Path, rows: int) -> tuple[int, Decimal]:
    """Stream ``rows`` events into ``path``; return the file size and the quantity total."""
    total_thousandths = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER + ",source,region\n")
        batch = []
        for i in range(rows):
            thousandths = i % 100_000
            total_thousandths += thousandths
            day = 1 + (i // 2) % 28
            batch.append(
                f"evt-{i:010d},acme,api-calls,2025-{10 + i % 2:02d}-{day:02d}T{i % 24:02d}:{i % 60:02d}:07Z,"
                f"{thousandths // 1000}.{thousandths % 1000:03d},gateway,us-east-{i % 3}\n"
            )
            if len(batch) == 20_000:
                handle.write("".join(batch))
                batch.clear()
        handle.write("".join(batch))
    return path.stat().st_size, Decimal(total_thousandths) / 1000


# Spawns the command and writes "<exit status> <peak RSS in KiB>" to argv[1]. Measuring from
# pytest directly (wait4, or the RUSAGE_CHILDREN delta) reports pytest's own size instead: on
# Linux a child's ru_maxrss keeps the high-water mark of the process it was forked from, so
# even /bin/true "peaks" at pytest's RSS. This launcher is ~9 MB, so that floor is low.
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def import_in_subprocess(path: Path, tmp_path: Path) -> tuple[int, str, str, float, float]:
    """Run ``manage.py import_usage path``; return (exit status, stdout, stderr, peak RSS in MiB, seconds)."""
    measured, out, err = tmp_path / "rusage.txt", tmp_path / "out.txt", tmp_path / "err.txt"
    command = [sys.executable, str(ROOT / "manage.py"), "import_usage", str(path)]
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(measured), *command],
            cwd=ROOT,
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            check=True,
        )
    elapsed = time.monotonic() - started
    status, peak_kib = (int(value) for value in measured.read_text().split())
    return status, out.read_text(), err.read_text(), peak_kib / 1024, elapsed


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_200_mb_file_imports_in_bounded_memory(acme, meter, tmp_path):
    small = tmp_path / "small.csv"
    small.write_bytes(csv_bytes(*(f"small-{i},acme,api-calls,2024-01-01T00:00:00Z,1" for i in range(1000))))
    big = tmp_path / "big.csv"
    size, total = write_big_usage_csv(big, BIG_ROWS)
    assert size > 190_000_000

    status, _, stderr, baseline_mib, _ = import_in_subprocess(small, tmp_path)
    assert status == 0, stderr
    try:
        status, stdout, stderr, peak_mib, elapsed = import_in_subprocess(big, tmp_path)
    finally:
        big.unlink()  # pytest keeps the last runs' tmp_path: do not leave 228 MB behind
    print(
        f"\nimport_usage of {size / 1e6:.0f} MB / {BIG_ROWS:,} rows: {elapsed:.1f} s "
        f"({BIG_ROWS / elapsed:,.0f} rows/s, {size / 1e6 / elapsed:.1f} MB/s), peak RSS {peak_mib:.0f} MiB "
        f"(a 1,000-row file: {baseline_mib:.0f} MiB)"
    )

    assert status == 0, stderr
    assert stdout == f"{BIG_ROWS} rows: {BIG_ROWS} accepted, 0 duplicates, 0 quarantined (unknown account or meter).\n"
    assert peak_mib < 150, f"peak RSS {peak_mib:.0f} MiB for a {size / 1e6:.0f} MB file"
    # Memory does not grow with the file: 228 MB costs about what 50 KB costs.
    assert peak_mib - baseline_mib < 32, f"{peak_mib:.0f} MiB vs {baseline_mib:.0f} MiB for a 1,000-row file"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(quantity) FROM usage_event WHERE occurred_at >= '2025-01-01'")
        assert cursor.fetchone() == (BIG_ROWS, total)
    big_rollups = DailyRollup.objects.filter(account=acme, day__year=2025)
    assert big_rollups.count() == 2 * 28
    assert sum(big_rollups.values_list("event_count", flat=True)) == BIG_ROWS
