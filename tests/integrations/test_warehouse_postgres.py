"""Warehouse pulls end to end from a real second PostgreSQL database (the warehouse)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Segment
from integrations.models import RunState, WarehouseMode, WarehousePull
from integrations.warehouse.pull import pull
from integrations.warehouse.services import pull_execute, pull_request
from tests.integrations.warehouse_support import make_source
from usage.ingestion.rollups import fold_all_deltas
from usage.models import DailyRollup, ExternalDailyAggregate, Meter, MeterTier, UsageEvent

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
D1, D2, D3 = dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)


@pytest.fixture
def refs(db):
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    calls = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=calls, up_to=None, unit_price="0.001")


def rollups() -> dict[tuple[str, dt.date], tuple[Decimal, Decimal, int]]:
    return {
        (r.account.external_id, r.day): (r.quantity, r.revenue, r.event_count)
        for r in DailyRollup.objects.select_related("account")
    }


def test_first_pull_stores_aggregates_and_folds_them_into_rollups(refs, warehouse):
    warehouse.rows(
        "daily_usage",
        [
            ("acme", "api-calls", D1, Decimal("1000"), 10, T0),
            ("acme", "api-calls", D2, Decimal("2500.5"), 20, T0),
            ("globex", "api-calls", D2, Decimal("40"), None, T0),
        ],
    )
    source = make_source(warehouse.dsn)

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.rows == 3
    assert run.counts == {"created": 3, "replaced": 0, "unchanged": 0}
    assert run.cursor_after == T0.isoformat()
    assert run.rows_per_second > 0
    source.refresh_from_db()
    assert source.last_cursor == T0.isoformat()
    assert ExternalDailyAggregate.objects.filter(source="warehouse").count() == 3
    fold_all_deltas()
    # revenue = quantity × 0.001; an unmapped/empty event count is 0.
    assert rollups() == {
        ("acme", D1): (Decimal("1000"), Decimal("1"), 10),
        ("acme", D2): (Decimal("2500.5"), Decimal("2.5005"), 20),
        ("globex", D2): (Decimal("40"), Decimal("0.04"), 0),
    }


def test_incremental_pull_reads_late_rows_in_the_lookback_and_a_repull_replaces(refs, warehouse):
    warehouse.rows(
        "daily_usage",
        [("acme", "api-calls", D1, Decimal("100"), 1, T0), ("acme", "api-calls", D2, Decimal("200"), 2, T0)],
    )
    source = make_source(warehouse.dsn)
    assert pull_execute(pull_request(source=source).pk).state == RunState.SUCCEEDED
    fold_all_deltas()

    # A late correction of D1 stamped a day *before* the cursor (inside the 2-day lookback),
    # a new day D3, and D2 unchanged but re-read.
    warehouse.execute(
        "UPDATE daily_usage SET total = 150, events = 3, updated_at = %s WHERE usage_day = %s",
        [T0 - dt.timedelta(days=1), D1],
    )
    warehouse.rows("daily_usage", [("acme", "api-calls", D3, Decimal("300"), 3, T0 + dt.timedelta(hours=1))])
    source.refresh_from_db()
    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.cursor_before == T0.isoformat()
    assert run.cursor_after == (T0 + dt.timedelta(hours=1)).isoformat()
    # Read: D1 (late), D2 (at the cursor, inside the lookback), D3 (new).
    assert run.counts == {"created": 1, "replaced": 1, "unchanged": 1}
    fold_all_deltas()
    # D1 replaced by 150 (not 100 + 150), D2 untouched, D3 added.
    assert rollups() == {
        ("acme", D1): (Decimal("150"), Decimal("0.15"), 3),
        ("acme", D2): (Decimal("200"), Decimal("0.2"), 2),
        ("acme", D3): (Decimal("300"), Decimal("0.3"), 3),
    }

    # A full re-pull of the same rows changes nothing.
    source.refresh_from_db()
    again = pull_execute(pull_request(source=source, full=True).pk)
    assert again.counts == {"created": 0, "replaced": 0, "unchanged": 3}
    fold_all_deltas()
    assert rollups()[("acme", D1)] == (Decimal("150"), Decimal("0.15"), 3)


def test_one_bad_row_fails_the_pull_with_its_row_column_and_reason_and_applies_nothing(refs, warehouse):
    warehouse.execute("ALTER TABLE daily_usage ALTER COLUMN total TYPE text")
    warehouse.rows(
        "daily_usage",
        [
            ("acme", "api-calls", D1, "100", 1, T0),
            ("acme", "api-calls", D2, "-5", 1, T0),
            ("initech", "api-calls", D2, "1.1234567", 1, T0),
            ("acme", "api-calls", D1, "7", 1, T0),
        ],
    )
    source = make_source(warehouse.dsn, query="SELECT * FROM daily_usage ORDER BY total", table="")
    # ORDER BY text: "-5", "1.1234567", "100", "7" → rows 1..4.
    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.FAILED
    assert run.error_count == 4
    assert run.errors == [
        {"row": 1, "column": "total", "reason": "-5 is negative; usage quantities must be zero or more"},
        {"row": 2, "column": "customer", "reason": "unknown account 'initech'"},
        {"row": 2, "column": "total", "reason": "1.1234567 has more than 6 decimal places"},
        {"row": 4, "column": "usage_day", "reason": "repeats row 3 (the same account, meter and day)"},
    ]
    assert run.error.startswith("Nothing was applied: 4 problem(s), the first on row 1")
    assert not ExternalDailyAggregate.objects.exists()
    assert fold_all_deltas() == 0
    source.refresh_from_db()
    assert source.last_cursor == ""


def test_preview_shows_the_first_rows_and_their_problems_and_writes_nothing(refs, warehouse):
    warehouse.rows(
        "daily_usage", [("acme", "nope", D1, Decimal("1"), 1, T0 + dt.timedelta(minutes=i)) for i in range(150)]
    )
    source = make_source(warehouse.dsn, query="SELECT * FROM daily_usage ORDER BY updated_at", table="")

    outcome = pull(source, preview=True)

    assert outcome.rows == 100
    assert outcome.preview_rows[0] == {
        "row": 1,
        "account": "acme",
        "meter": "nope",
        "day": "2026-11-18",
        "quantity": "1",
        "event_count": "1",
        "cursor": "2026-11-20 06:00:00+00",
    }
    # Every row names an unknown meter, and rows 2..100 repeat row 1's key: 100 + 99 problems.
    assert outcome.report.error_count == 199
    assert outcome.report.errors[:3] == [
        {"row": 1, "column": "metric", "reason": "unknown meter 'nope'"},
        {"row": 2, "column": "usage_day", "reason": "repeats row 1 (the same account, meter and day)"},
        {"row": 2, "column": "metric", "reason": "unknown meter 'nope'"},
    ]
    assert not ExternalDailyAggregate.objects.exists()
    assert not WarehousePull.objects.exists()


def test_a_pull_that_fails_emits_sync_failed(refs, warehouse):
    from revops.events import domain_event

    seen = []

    def listener(sender, **kwargs):
        seen.extend(kwargs["events"] if "events" in kwargs else [kwargs["event"]])

    domain_event.connect(listener)
    try:
        warehouse.rows("daily_usage", [("nobody", "api-calls", D1, Decimal("1"), 1, T0)])
        run = pull_execute(pull_request(source=make_source(warehouse.dsn)).pk)
    finally:
        domain_event.disconnect(listener)
    assert run.state == RunState.FAILED
    assert [(e.type, e.data["source"], e.data["error_count"]) for e in seen] == [("sync.failed", "warehouse", 1)]


def test_events_mode_goes_through_the_event_path_and_dedupes_a_repull(refs, warehouse):
    warehouse.rows(
        "usage_events",
        [
            ("e1", "acme", "api-calls", T0, Decimal("5"), 1),
            ("e2", "acme", "api-calls", T0 + dt.timedelta(minutes=1), Decimal("7"), 2),
            ("e3", "initech", "api-calls", T0, Decimal("1"), 3),
        ],
    )
    source = make_source(warehouse.dsn, mode=WarehouseMode.EVENTS)

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    # e3's account is unknown: quarantined, as the CSV import does.
    assert run.counts == {"accepted": 2, "duplicates": 0, "quarantined": 1}
    assert run.cursor_after == "3"
    assert set(UsageEvent.objects.values_list("source", "event_id")) == {("warehouse", "e1"), ("warehouse", "e2")}

    # A full re-pull plus one new row: only the new one is stored.
    warehouse.rows("usage_events", [("e4", "acme", "api-calls", T0, Decimal("1"), 4)])
    source.refresh_from_db()
    again = pull_execute(pull_request(source=source, full=True).pk)
    assert again.counts == {"accepted": 1, "duplicates": 3, "quarantined": 0}
    fold_all_deltas()
    assert rollups() == {("acme", D3): (Decimal("13"), Decimal("0.013"), 3)}


def test_events_mode_bad_row_is_reported_by_row_and_warehouse_column(refs, warehouse):
    warehouse.execute("ALTER TABLE usage_events ALTER COLUMN amount TYPE text")
    warehouse.rows("usage_events", [("e1", "acme", "api-calls", T0, "5", 1), ("e2", "acme", "api-calls", T0, "x", 2)])
    source = make_source(
        warehouse.dsn, mode=WarehouseMode.EVENTS, query="SELECT * FROM usage_events ORDER BY seq", table=""
    )

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.FAILED
    assert run.errors == [{"row": 2, "column": "amount", "reason": "'x' is not a number"}]
    assert not UsageEvent.objects.exists()
