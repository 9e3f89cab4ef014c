"""Writes for usage data in: quarantine replay and raw-event retention."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from usage.enqueue import enqueue_rollup_fold
from usage.ingestion.events import EventIn
from usage.ingestion.ingest import ensure_partitions, forget_known_partitions, resolve_references, store_events
from usage.models import QuarantinedEvent

logger = logging.getLogger(__name__)

REPLAY_BATCH = 5000


@dataclass
class ReplayResult:
    replayed: int = 0
    duplicates: int = 0
    still_unknown: int = 0


def quarantine_replay(*, batch_size: int = REPLAY_BATCH) -> ReplayResult:
    """Ingest quarantined events whose account and meter now exist, exactly once.

    Each batch stores the events and deletes them from quarantine in one transaction;
    rows are locked (SKIP LOCKED) so two replays running at once never take the same event.
    """
    result = ReplayResult()
    last_id = 0
    while True:
        with transaction.atomic():
            rows = list(
                QuarantinedEvent.objects.select_for_update(skip_locked=True)
                .filter(id__gt=last_id)
                .order_by("id")[:batch_size]
            )
            if not rows:
                break
            last_id = rows[-1].id
            events = {
                row.id: EventIn(
                    source=row.source,
                    event_id=row.event_id,
                    account_ref=row.account_ref,
                    meter_ref=row.meter_ref,
                    occurred_at=row.occurred_at,
                    quantity=row.quantity,
                    properties=row.properties,
                )
                for row in rows
            }
            resolved = resolve_references(list(events.values()))
            result.still_unknown += len(resolved.unknown)
            if not resolved.rows:
                continue
            ensure_partitions(event.occurred_at.date() for event, _, _ in resolved.rows)
            stored = store_events(resolved.rows, received_at=timezone.now())
            result.replayed += stored.accepted
            result.duplicates += stored.duplicates
            known = {(e.source, e.event_id) for e, _, _ in resolved.rows}
            QuarantinedEvent.objects.filter(
                id__in=[row_id for row_id, e in events.items() if (e.source, e.event_id) in known]
            ).delete()
            if stored.accepted:
                transaction.on_commit(enqueue_rollup_fold)
    return result


@dataclass(frozen=True)
class RetentionResult:
    cutoff: dt.date
    dropped_partitions: list[str]
    deleted_keys: int


def retention_apply(*, now: dt.datetime | None = None, retention_days: int | None = None) -> RetentionResult:
    """Drop raw-event partitions wholly older than the retention window, and their keys.

    Rollups are kept forever. Pending rollup deltas are folded first so nothing raw is
    dropped before it counts. Keys go with their partition: an event is remembered
    exactly as long as it is kept.
    """
    from usage.ingestion.rollups import fold_all_deltas

    now = now or timezone.now()
    retention_days = settings.USAGE_RAW_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = (now - dt.timedelta(days=retention_days)).date().replace(day=1)
    fold_all_deltas()
    dropped = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'usage_event'::regclass ORDER BY c.relname
            """
        )
        for name, _bound in cursor.fetchall():
            month = dt.date(int(name[-6:-2]), int(name[-2:]), 1)
            upper = (month + dt.timedelta(days=32)).replace(day=1)
            if upper <= cutoff:
                cursor.execute(f'DROP TABLE "{name}"')  # our own partition name, from pg_class
                dropped.append(name)
        deleted = 0
        while True:  # in slices, so the key table is never locked for long
            cursor.execute(
                "DELETE FROM usage_eventkey WHERE ctid = ANY(ARRAY("
                " SELECT ctid FROM usage_eventkey WHERE occurred_at < %s LIMIT 100000))",
                [dt.datetime.combine(cutoff, dt.time(), tzinfo=dt.UTC)],
            )
            deleted += cursor.rowcount
            if cursor.rowcount < 100000:
                break
    if dropped:
        forget_known_partitions()
    logger.info("retention: dropped %s, deleted %s keys before %s", dropped, deleted, cutoff)
    return RetentionResult(cutoff, dropped, deleted)


def usage_complete_from_declare(*, day: dt.date, by=None, source: str = ""):
    """Declare that usage is complete from ``day`` on (a ``UsageHistory``). The earliest
    declaration wins: a later import that starts later does not make earlier history less
    complete. A day outside the calendar revops covers is an ``ApplicationError``."""
    from revops.clock import day_in_range
    from revops.errors import ApplicationError
    from usage.models import UsageHistory

    if not day_in_range(day):
        raise ApplicationError(f"{day} is outside the days revops covers.", details={"field": "complete_from"})
    with transaction.atomic():
        history = UsageHistory.objects.select_for_update().get_or_create(pk=1)[0]
        if history.complete_from is None or day < history.complete_from:
            history.complete_from = day
            history.declared_by = by
            history.declared_at = timezone.now()
            history.source = source[:200]
            history.save()
    return history
