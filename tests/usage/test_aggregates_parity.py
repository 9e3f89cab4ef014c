"""The same usage sent as events or pulled as daily aggregates gives the same rollups and
metrics; a re-pulled day replaces; a rebuild from raw events keeps the aggregates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction

from accounts.models import Account, Segment
from usage.ingestion.aggregates import apply_aggregates
from usage.ingestion.events import EventIn
from usage.ingestion.ingest import ingest_batch
from usage.ingestion.rollups import fold_all_deltas, rebuild_from_events
from usage.models import DailyRollup, Meter, MeterTier

pytestmark = pytest.mark.django_db

RECEIVED = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
# (account, day, quantity, events): a tiered meter, so the month's running volume prices each day.
USAGE = [("acme", 1, "600", 2), ("acme", 2, "600", 1), ("globex", 2, "100", 4), ("acme", 20, "0.5", 1)]


@pytest.fixture
def refs(db):
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    tokens = Meter.objects.create(key="tokens", name="Tokens", unit="token")
    MeterTier.objects.create(meter=tokens, up_to=Decimal("1000"), unit_price="0.002")
    MeterTier.objects.create(meter=tokens, up_to=None, unit_price="0.001")
    return tokens


def _as_events() -> None:
    events = []
    for account, day, quantity, count in USAGE:
        share = Decimal(quantity) / count
        for i in range(count):
            when = dt.datetime(2026, 11, day, 9 + i, tzinfo=dt.UTC)
            events.append(EventIn("default", f"{account}-{day}-{i}", account, "tokens", when, share, {}))
    ingest_batch(events, received_at=RECEIVED)


def _as_aggregates(rows, *, source: str = "wh") -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS _agg")  # inside a test's transaction ON COMMIT has not run
        cursor.execute(
            "CREATE TEMP TABLE _agg (account_id bigint, meter_id bigint, day date, quantity numeric(28, 6),"
            " event_count bigint) ON COMMIT DROP"
        )
        for account, day, quantity, count in rows:
            cursor.execute(
                "INSERT INTO _agg SELECT a.id, m.id, %s, %s, %s FROM accounts_account a, usage_meter m"
                " WHERE a.external_id = %s AND m.key = 'tokens'",
                [dt.date(2026, 11, day), Decimal(quantity), count, account],
            )
        apply_aggregates(source=source, rows="_agg")


def _rollups() -> list[tuple]:
    return sorted(DailyRollup.objects.values_list("account__external_id", "day", "quantity", "revenue", "event_count"))


def _metrics_snapshot() -> list[tuple]:
    from usage.models import AccountMetrics
    from usage.signals.services import refresh_metrics

    refresh_metrics(as_of=dt.date(2026, 11, 30))
    return sorted(
        (
            m.account.external_id,
            m.as_of,
            tuple(v for k, v in vars(m).items() if k not in ("_state", "id", "computed_at")),
        )
        for m in AccountMetrics.objects.select_related("account")
    )


def test_events_and_aggregates_give_identical_rollups_and_metrics(refs):
    _as_events()
    fold_all_deltas()
    from_events, metrics_events = _rollups(), _metrics_snapshot()
    assert len(metrics_events) == 2  # acme and globex
    # Acme: Nov 1 600 × 0.002 = 1.2; Nov 2 400 × 0.002 + 200 × 0.001 = 1.0; Nov 20 0.5 × 0.001 = 0.0005.
    assert from_events == [
        ("acme", dt.date(2026, 11, 1), Decimal("600"), Decimal("1.2"), 2),
        ("acme", dt.date(2026, 11, 2), Decimal("600"), Decimal("1.0"), 1),
        ("acme", dt.date(2026, 11, 20), Decimal("0.5"), Decimal("0.0005"), 1),
        ("globex", dt.date(2026, 11, 2), Decimal("100"), Decimal("0.2"), 4),
    ]

    with connection.cursor() as cursor:
        for table in ("usage_dailyrollup", "usage_event", "usage_eventkey", "usage_firstseen", "usage_accountmetrics"):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
    _as_aggregates(USAGE)
    fold_all_deltas()

    assert _rollups() == from_events
    assert _metrics_snapshot() == metrics_events


def test_a_repulled_day_replaces_and_reprices_the_month(refs):
    _as_aggregates(USAGE)
    fold_all_deltas()
    # Nov 1 corrected from 600 to 1100: it crosses the tier itself, and Nov 2 is re-priced
    # (its volume now all above 1,000): 1000 × 0.002 + 100 × 0.001 = 2.1; Nov 2 600 × 0.001 = 0.6.
    _as_aggregates([("acme", 1, "1100", 4)])
    fold_all_deltas()

    rows = {(a, d.day): (q, r, c) for a, d, q, r, c in _rollups()}
    assert rows[("acme", 1)] == (Decimal("1100"), Decimal("2.1"), 4)
    assert rows[("acme", 2)] == (Decimal("600"), Decimal("0.6"), 1)


def test_a_rebuild_from_raw_events_keeps_the_aggregates_of_the_same_days(refs):
    ingest_batch(
        [EventIn("default", "e1", "acme", "tokens", dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC), Decimal("5"), {})],
        received_at=RECEIVED,
    )
    _as_aggregates([("acme", 1, "10", 2)])
    fold_all_deltas()
    folded = _rollups()
    assert folded == [("acme", dt.date(2026, 11, 1), Decimal("15"), Decimal("0.03"), 3)]

    rebuild_from_events()

    assert _rollups() == folded
