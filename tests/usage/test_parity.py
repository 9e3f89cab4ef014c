"""One rule set for times and quantities: the CSV import (SQL) and the API (Python) agree.

Every edge case goes through both paths: ``import_usage_stream`` (the CSV's SQL checks, its
cheap predicate and its typed casts) and the API's parser (``usage.ingestion.events``) and endpoint.
Both must accept it with the same stored value, or refuse it with the same reason.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from decimal import Decimal

import pytest

from revops.tabular import ImportRejected
from tests.usage.conftest import event
from usage.ingestion.csv_import import import_usage_stream
from usage.ingestion.events import EventError, parse_native
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

T = "2026-11-02T08:15:00Z"
RECEIVED = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)

QUANTITIES = [
    "7",
    "0",
    "1.5",
    "5.",
    ".5",
    "+3",
    "-0",
    "-0.0",
    "1e3",
    "1E+2",
    "2.5e-3",
    "1.5e-7",
    "0e-9999",
    "1.1234567",
    "1.1234560",
    "0.000001",
    "9999999999999999999999.999999",
    "1e22",
    "12345678901234567890123",
    "1e99999",
    " 7 ",
    "\t8",
    "-1",
    "-5x",
    "12abc",
    "NaN",
    "-Infinity",
    "inf",
    "1_000",
    "0x10",
    "",
]

TIMES = [
    T,
    "2026-11-02t08:15:00z",
    "2026-11-02 08:15:00Z",
    "2026-11-02T08:15:00.5Z",
    "2026-11-02T08:15:00.123456Z",
    "2026-11-02T08:15:00.123456789Z",
    "2026-11-02T08:15:59.9999999Z",
    "2026-11-02T08:15:00+02:00",
    "2026-11-02T08:15:00-09:30",
    "2026-11-02T08:15:00+15:59",
    "2026-11-02T08:15:00+16:00",
    "2026-12-31T23:59:60Z",
    "2026-11-02T24:00:00Z",
    "2026-11-02T08:60:00Z",
    "2028-02-29T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-11-31T10:00:00+01:00",
    "2026-11-02T08:15:00",
    "2026-11-02T08:15",
    "2026-11-02",
    "1899-12-31T23:00:00Z",
    "1900-01-01T00:00:00Z",
    "2999-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    " 2026-11-02T08:15:00Z ",
    "yesterday",
    "",
]


_ids = itertools.count()


def via_csv(time: str, quantity: str) -> tuple[str, object]:
    """("ok", (occurred_at, quantity)) as stored, or ("refused", [(column, reason), …])."""
    event_id = f"x{next(_ids)}"
    data = f'id,account,meter,time,quantity\n{event_id},acme,api-calls,"{time}","{quantity}"\n'.encode()
    try:
        import_usage_stream(io.BytesIO(data), received_at=RECEIVED)
    except ImportRejected as exc:
        return "refused", [(e["column"], e["reason"]) for e in exc.report.errors]
    stored = UsageEvent.objects.get(event_id=event_id)
    return "ok", (stored.occurred_at, stored.quantity)


def via_api_parser(time: str, quantity: str) -> tuple[str, object]:
    fields = {"time": time, "quantity": quantity}
    problems = []
    for name in ("time", "quantity"):
        try:
            parsed = parse_native(event("x", **{name: fields[name]}))
        except EventError as exc:
            problems.append((exc.field, exc.reason))
    if problems:
        return "refused", problems
    parsed = parse_native(event("x", time=time, quantity=quantity))
    return "ok", (parsed.occurred_at, parsed.quantity)


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_a_quantity_is_judged_alike_by_the_csv_import_and_the_api(acme, meter, quantity):
    csv, api = via_csv(T, quantity), via_api_parser(T, quantity)

    assert csv == api
    if csv[0] == "ok":
        assert csv[1][1] == Decimal(quantity.strip()) or Decimal(quantity.strip()).is_zero()


@pytest.mark.parametrize("time", TIMES)
def test_a_time_is_judged_alike_by_the_csv_import_and_the_api(acme, meter, time):
    assert via_csv(time, "1") == via_api_parser(time, "1")


def test_the_rules_give_these_answers(acme, meter):
    """A few pinned outcomes, so a rule cannot drift in both paths at once unnoticed."""
    assert via_csv(T, ".5")[1][1] == Decimal("0.5")
    assert via_csv(T, "1e3")[1][1] == Decimal(1000)
    assert via_csv(T, "-0")[1][1] == Decimal(0)
    assert via_csv(T, "1.1234560")[1][1] == Decimal("1.123456")
    assert via_csv(T, "1.1234567") == ("refused", [("quantity", "1.1234567 has more than 6 decimal places")])
    assert via_csv(T, "1e22") == ("refused", [("quantity", "1e22 is too large")])
    assert via_csv(T, "1e99999") == ("refused", [("quantity", "'1e99999' is not a number")])
    assert via_csv("2026-12-31T23:59:60Z", "1") == (
        "refused",
        [("time", "'2026-12-31T23:59:60Z' is not an RFC 3339 timestamp")],
    )
    # A fraction beyond microseconds is cut, not rounded (PostgreSQL alone would round up).
    assert via_csv("2026-11-02T08:15:59.9999999Z", "1")[1][0] == dt.datetime(
        2026, 11, 2, 8, 15, 59, 999999, tzinfo=dt.UTC
    )
    assert via_csv("2026-11-02T08:15:00+02:00", "1")[1][0] == dt.datetime(2026, 11, 2, 6, 15, tzinfo=dt.UTC)


@pytest.mark.parametrize("quantity", [".5", "1e3", "-0", "1.1234560", "1.1234567", "1e22"])
def test_the_http_api_answers_as_its_parser_does(post_events, acme, meter, quantity):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    when = now.isoformat().replace("+00:00", "Z")

    body = post_events([event("h", time=when, quantity=quantity)]).json()

    outcome, value = via_api_parser(when, quantity)
    if outcome == "ok":
        assert body["accepted"] == 1
        assert UsageEvent.objects.get(event_id="h").quantity == value[1]
    else:
        ((field, reason),) = value
        assert body["rejected"] == [{"index": 0, "id": "h", "error": f"{field}: {reason}"}]


def test_a_clean_file_in_the_usual_forms_is_typed_in_one_pass_without_the_detailed_checks(acme, meter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = [
        "z1,acme,api-calls,2026-11-02T08:15:00Z,7",
        "z2,acme,api-calls,2026-11-02T08:15:10.120Z,0.5",
        "z3,acme,api-calls,2026-11-02T08:15:10.000Z,10",
        "z4,acme,api-calls,2026-11-02T08:15:10.5Z,1.000000",
    ]
    data = ("id,account,meter,time,quantity\n" + "\n".join(rows) + "\n").encode()

    with CaptureQueriesContext(connection) as queries:
        result = import_usage_stream(io.BytesIO(data), received_at=RECEIVED)

    assert result.accepted == 4
    assert not [q for q in queries.captured_queries if "v(col, reason)" in q["sql"]]
    stored = dict(UsageEvent.objects.values_list("event_id", "occurred_at"))
    assert stored["z2"] == dt.datetime(2026, 11, 2, 8, 15, 10, 120000, tzinfo=dt.UTC)
    assert stored["z3"] == dt.datetime(2026, 11, 2, 8, 15, 10, tzinfo=dt.UTC)


def test_a_file_with_offsets_takes_the_detailed_checks_and_imports_alike(acme, meter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    data = b"id,account,meter,time,quantity\no1,acme,api-calls,2026-11-02T08:15:00+02:00,.5\n"

    with CaptureQueriesContext(connection) as queries:
        result = import_usage_stream(io.BytesIO(data), received_at=RECEIVED)

    assert result.accepted == 1
    assert [q for q in queries.captured_queries if "v(col, reason)" in q["sql"]]
    assert UsageEvent.objects.get(event_id="o1").occurred_at == dt.datetime(2026, 11, 2, 6, 15, tzinfo=dt.UTC)


def test_a_backfill_of_new_events_skips_the_conflict_checks_and_one_with_stored_ones_falls_back(acme, meter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def store_statements(data: bytes) -> tuple[object, list[bool]]:
        with CaptureQueriesContext(connection) as queries:
            result = import_usage_stream(io.BytesIO(data), received_at=RECEIVED)
        conflicts = [
            "ON CONFLICT (key) DO NOTHING" in q["sql"] for q in queries.captured_queries if "fresh" in q["sql"]
        ]
        return result, conflicts

    first = "".join(f"b{i},acme,api-calls,{T},{i}\n" for i in range(50))
    result, conflicts = store_statements(f"id,account,meter,time,quantity\n{first}".encode())
    assert (result.accepted, conflicts) == (50, [False])

    # The same events again, plus one new: the sample of a one-page file misses the stored keys
    # (or finds them); either way the general statement decides and counts the duplicates.
    result, conflicts = store_statements(f"id,account,meter,time,quantity\n{first}new,acme,api-calls,{T},1\n".encode())
    assert (result.accepted, result.duplicates) == (1, 50)
    assert conflicts[-1] is True
    assert UsageEvent.objects.count() == 51
