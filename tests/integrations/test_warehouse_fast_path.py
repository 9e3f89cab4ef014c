"""The fast path of an aggregates pull (untrimmed checks, a first pull straight from a view, the
COPY read in blocks) gives what the careful path gives, and fails the way it does."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Segment
from integrations.models import RunState
from integrations.warehouse.services import pull_execute, pull_request
from integrations.warehouse.sources import COPY_BLOCK_BYTES
from tests.integrations.warehouse_support import make_source
from usage.ingestion.rollups import fold_all_deltas
from usage.models import DailyRollup, ExternalDailyAggregate, Meter, MeterTier

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
D1, D2 = dt.date(2026, 11, 18), dt.date(2026, 11, 19)


@pytest.fixture
def refs(db):
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    calls = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=calls, up_to=None, unit_price="0.001")


def stored() -> list[tuple]:
    return sorted(ExternalDailyAggregate.objects.values_list("account__external_id", "day", "quantity", "event_count"))


def rollups() -> list[tuple]:
    return sorted(DailyRollup.objects.values_list("account__external_id", "day", "quantity", "revenue", "event_count"))


def _text_columns(warehouse) -> None:
    warehouse.execute("DROP TABLE daily_usage")
    warehouse.execute(
        "CREATE TABLE daily_usage (customer text, metric text, usage_day text, total text, events text,"
        " updated_at text)"
    )


@pytest.mark.parametrize("later_pull", [False, True])
def test_values_with_surrounding_whitespace_are_trimmed_as_the_rules_trim_them(refs, warehouse, later_pull):
    _text_columns(warehouse)
    stamp = T0.isoformat()
    source = make_source(warehouse.dsn)
    if later_pull:  # a stored row first: this pull diffs instead of inserting
        warehouse.rows("daily_usage", [("globex", "api-calls", "2026-11-01", "1", "1", stamp)])
        assert pull_execute(pull_request(source=source).pk).state == RunState.SUCCEEDED
        warehouse.execute("DELETE FROM daily_usage")
        source.refresh_from_db()
    warehouse.rows(
        "daily_usage",
        [
            (" acme ", "api-calls ", " 2026-11-18\t", " 1000 ", " 10", f" {stamp} "),
            ("acme", " api-calls", "2026-11-19", "2500.5", "", stamp),
        ],
    )

    run = pull_execute(pull_request(source=source, full=True).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["created"] == 2
    assert run.cursor_after == stamp
    assert [row for row in stored() if row[0] == "acme"] == [
        ("acme", D1, Decimal("1000"), 10),
        ("acme", D2, Decimal("2500.5"), 0),
    ]
    fold_all_deltas()
    assert [row for row in rollups() if row[0] == "acme"] == [
        ("acme", D1, Decimal("1000"), Decimal("1"), 10),
        ("acme", D2, Decimal("2500.5"), Decimal("2.5005"), 0),
    ]


def test_a_first_pull_whose_only_problem_is_a_repeated_key_names_the_rows(refs, warehouse):
    warehouse.rows(
        "daily_usage",
        [
            ("acme", "api-calls", D1, Decimal("1"), 1, T0),
            ("globex", "api-calls", D1, Decimal("2"), 1, T0),
            ("acme", "api-calls", D1, Decimal("3"), 1, T0),
        ],
    )
    source = make_source(warehouse.dsn, query="SELECT * FROM daily_usage ORDER BY total", table="")

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.FAILED
    assert run.errors == [
        {"row": 3, "column": "usage_day", "reason": "repeats row 1 (the same account, meter and day)"}
    ]
    assert not ExternalDailyAggregate.objects.exists()
    assert fold_all_deltas() == 0


def test_a_bad_cursor_is_reported_by_the_rules_and_nothing_is_applied(refs, warehouse):
    _text_columns(warehouse)
    warehouse.rows(
        "daily_usage",
        [
            ("acme", "api-calls", "2026-11-18", "1", "1", T0.isoformat()),
            ("acme", "api-calls", "2026-11-19", "2", "1", ""),
        ],
    )
    source = make_source(warehouse.dsn, query="SELECT * FROM daily_usage ORDER BY usage_day", table="")

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.FAILED
    assert run.errors == [{"row": 2, "column": "updated_at", "reason": "is required (the cursor column)"}]
    assert not ExternalDailyAggregate.objects.exists()


def test_many_rows_cross_the_copy_blocks_and_all_arrive_once(refs, warehouse):
    rows = 20_000
    warehouse.execute(
        "INSERT INTO daily_usage SELECT 'acme', 'api-calls', DATE '2000-01-01' + d, d + 0.25, d %% 7,"
        " TIMESTAMPTZ '2026-11-01 00:00+00' + d * interval '1 minute' FROM generate_series(0, %s - 1) d",
        [rows],
    )
    # ~50 bytes a row: several blocks.
    assert rows * 50 > 2 * COPY_BLOCK_BYTES

    run = pull_execute(pull_request(source=make_source(warehouse.dsn)).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts == {"created": rows, "replaced": 0, "unchanged": 0}
    assert run.cursor_after == (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=rows - 1)).isoformat()
    days = list(ExternalDailyAggregate.objects.order_by("day").values_list("day", "quantity", "event_count"))
    assert len(days) == rows
    assert days[0] == (dt.date(2000, 1, 1), Decimal("0.25"), 0)
    assert days[-1] == (
        dt.date(2000, 1, 1) + dt.timedelta(days=rows - 1),
        Decimal(rows - 1) + Decimal("0.25"),
        (rows - 1) % 7,
    )


def test_a_query_failing_midway_fails_the_pull_with_the_warehouse_error_and_applies_nothing(refs, warehouse):
    warehouse.execute(
        "INSERT INTO daily_usage SELECT 'acme', 'api-calls', DATE '2000-01-01' + d, 1, 1, %s"
        " FROM generate_series(0, 9999) d",
        [T0],
    )
    # Row 9,000 divides by zero: the COPY has sent rows before the error.
    query = "SELECT customer, metric, usage_day, total / (row_number() OVER () - 9000) AS total, events, updated_at FROM daily_usage"
    source = make_source(warehouse.dsn, query=query, table="")

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.FAILED
    assert run.error == "The warehouse read failed: division by zero"
    assert not ExternalDailyAggregate.objects.exists()
    source.refresh_from_db()
    assert source.last_cursor == ""
