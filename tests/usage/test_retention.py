"""Raw events expire by whole monthly partitions; rollups stay forever."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from usage.ingestion.events import EventIn
from usage.ingestion.ingest import ingest_batch
from usage.ingestion.rollups import fold_all_deltas
from usage.ingestion.services import retention_apply
from usage.models import DailyRollup, UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


def ev(event_id: str, when: dt.datetime) -> EventIn:
    return EventIn("default", event_id, "acme", "api-calls", when, Decimal(1), {})


def partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'usage_event'::regclass ORDER BY 1"
        )
        return [name for (name,) in cursor.fetchall()]


def test_retention_drops_whole_old_months_and_their_keys_but_keeps_rollups(acme, meter):
    now = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    ingest_batch(
        [
            ev("aug", dt.datetime(2026, 8, 10, tzinfo=dt.UTC)),
            ev("sep", dt.datetime(2026, 9, 30, tzinfo=dt.UTC)),
            ev("oct", dt.datetime(2026, 10, 20, tzinfo=dt.UTC)),
            ev("nov", dt.datetime(2026, 11, 20, tzinfo=dt.UTC)),
        ],
        received_at=now,
    )
    fold_all_deltas()

    # 35 days before Nov 21 is Oct 17: October is still partly inside the window, so it stays.
    result = retention_apply(now=now, retention_days=35)

    assert result.cutoff == dt.date(2026, 10, 1)
    # Other tests may have left older (empty) partitions behind; none from October on goes.
    assert {"usage_event_202608", "usage_event_202609"} <= set(result.dropped_partitions)
    assert all(name < "usage_event_202610" for name in result.dropped_partitions)
    assert "usage_event_202608" not in partitions() and "usage_event_202610" in partitions()
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["nov", "oct"]
    assert result.deleted_keys >= 2
    assert DailyRollup.objects.count() == 4  # rollups are kept forever


def test_events_in_a_dropped_month_can_be_backfilled_again_and_count_once_more(acme, meter):
    """Keys live as long as their raw events: after expiry a re-sent old event is new data."""
    now = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    old = dt.datetime(2026, 8, 10, tzinfo=dt.UTC)
    ingest_batch([ev("aug", old)], received_at=now)
    retention_apply(now=now, retention_days=35)

    again = ingest_batch([ev("aug", old)], received_at=now)

    assert again.accepted == 1


def test_retention_folds_pending_deltas_before_dropping_anything(acme, meter):
    now = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    ingest_batch([ev("aug", dt.datetime(2026, 8, 10, tzinfo=dt.UTC))], received_at=now)

    retention_apply(now=now, retention_days=35)

    assert DailyRollup.objects.get().quantity == Decimal(1)


def test_running_retention_twice_changes_nothing_more(acme, meter):
    now = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    ingest_batch([ev("aug", dt.datetime(2026, 8, 10, tzinfo=dt.UTC))], received_at=now)
    retention_apply(now=now, retention_days=35)

    second = retention_apply(now=now, retention_days=35)

    assert (second.dropped_partitions, second.deleted_keys) == ([], 0)


def test_an_identical_backfill_file_adds_nothing_even_after_its_events_expired(acme, meter):
    import io

    from usage.ingestion.csv_import import import_usage_stream

    content = b"id,account,meter,time,quantity\nold1,acme,api-calls,2026-08-10T10:00:00Z,7\n"
    first = import_usage_stream(io.BytesIO(content))
    retention_apply(now=dt.datetime(2026, 11, 21, tzinfo=dt.UTC), retention_days=35)

    again = import_usage_stream(io.BytesIO(content))

    assert (first.accepted, again.accepted, again.duplicates) == (1, 0, 1)
    assert again.already_imported_on is not None
    fold_all_deltas()
    assert DailyRollup.objects.get().quantity == Decimal(7)
