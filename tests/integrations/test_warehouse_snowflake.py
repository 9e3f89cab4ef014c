"""A Snowflake warehouse through the real connector and snowflake-sqlalchemy, over HTTP to a
local fakesnow server (DuckDB behind Snowflake's REST protocol)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import fakesnow
import pytest
import sqlalchemy as sa

from accounts.models import Account, Segment
from integrations.models import RunState
from integrations.warehouse.services import pull_execute, pull_request
from tests.integrations.warehouse_support import make_source
from usage.ingestion.rollups import fold_all_deltas
from usage.models import DailyRollup, Meter, MeterTier

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def snowflake_url():
    with fakesnow.server() as kw:
        url = f"snowflake://fake:snow@fakesnow/analytics/usage?host=127.0.0.1&port={kw['port']}&protocol=http"
        engine = sa.create_engine(
            "snowflake://fake:snow@fakesnow/analytics/usage",
            poolclass=sa.pool.NullPool,
            connect_args={"host": "127.0.0.1", "port": kw["port"], "protocol": "http"},
        )
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE IF NOT EXISTS analytics")
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS analytics.usage")
            conn.exec_driver_sql(
                "CREATE OR REPLACE TABLE daily_usage (customer text, metric text, usage_day date, total number(20, 6),"
                " events int, updated_at timestamp_tz)"
            )
            conn.exec_driver_sql(
                "INSERT INTO daily_usage VALUES"
                " ('acme', 'api-calls', '2026-11-18', 10.5, 2, '2026-11-20 06:00:00+00:00'),"
                " ('acme', 'api-calls', '2026-11-19', 4, 1, '2026-11-20 07:00:00+00:00')"
            )
            conn.commit()
        yield url, engine


def test_a_snowflake_pull_stores_aggregates_and_moves_the_cursor(db, snowflake_url):
    url, engine = snowflake_url
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="0.5")
    source = make_source(url, name="snowflake")
    assert source.dialect == "snowflake"

    run = pull_execute(pull_request(source=source).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts == {"created": 2, "replaced": 0, "unchanged": 0}
    assert run.cursor_after == "2026-11-20T07:00:00+00:00"
    fold_all_deltas()
    # revenue = quantity × 0.5
    assert sorted(DailyRollup.objects.values_list("day", "quantity", "revenue", "event_count")) == [
        (dt.date(2026, 11, 18), Decimal("10.5"), Decimal("5.25"), 2),
        (dt.date(2026, 11, 19), Decimal("4"), Decimal("2"), 1),
    ]

    # Incremental: the cursor is sent as a bound parameter; with no lookback only the newer row
    # comes back, changed upstream to 6: it replaces 4.
    with engine.connect() as conn:
        conn.exec_driver_sql(
            "UPDATE daily_usage SET total = 6, updated_at = '2026-11-20 08:00:00+00:00' WHERE usage_day = '2026-11-19'"
        )
        conn.commit()
    source.refresh_from_db()
    source.lookback = 0
    source.save()
    again = pull_execute(pull_request(source=source).pk)
    assert again.state == RunState.SUCCEEDED, again.error
    assert again.rows == 1
    assert again.counts == {"created": 0, "replaced": 1, "unchanged": 0}
    fold_all_deltas()
    assert DailyRollup.objects.get(day=dt.date(2026, 11, 19)).quantity == Decimal("6")
