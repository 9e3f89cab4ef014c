"""Writing usage events: idempotent, all-SQL, exactly-once into the rollups.

Every accepted event goes through ``store_events``:

1. binary COPY of the batch into a temporary table;
2. one statement inserts each event's key into ``usage_eventkey`` (ON CONFLICT DO
   NOTHING: the key says whether this event is new), the new events into the
   partitioned ``usage_event``, their per (account, meter, day) sums into
   ``usage_rollupdelta``, and first-seen meters/workloads/regions into ``usage_firstseen``.

All in the caller's transaction, so an event is either stored with its delta or not at
all. ``usage.ingestion.rollups.fold_deltas`` later folds the deltas into ``DailyRollup``. Deltas
rather than recomputation from raw events keep rollups exact for days whose raw
partitions were already dropped by retention.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import OperationalError, connection, transaction
from psycopg.errors import DeadlockDetected

from accounts.models import Account
from usage.enqueue import enqueue_rollup_fold
from usage.ingestion.events import EventIn
from usage.models import Meter

DEADLOCK_RETRIES = 3
# Months whose partition this process knows exists (partitions are never created twice).
_known_partitions: set[dt.date] = set()


@dataclass
class StoreResult:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    touched_days: set[dt.date] = field(default_factory=set)

    def add(self, other: StoreResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.touched_days |= other.touched_days


@dataclass(frozen=True)
class Resolved:
    """Events whose account and meter are known, and the rest with the reason."""

    rows: list[tuple[EventIn, int, int]]
    unknown: list[tuple[EventIn, str]]


def resolve_references(events: Sequence[EventIn]) -> Resolved:
    account_refs = {e.account_ref for e in events}
    meter_refs = {e.meter_ref for e in events}
    accounts = dict(Account.objects.filter(external_id__in=account_refs).values_list("external_id", "id"))
    meters = dict(Meter.objects.filter(key__in=meter_refs).values_list("key", "id"))
    rows, unknown = [], []
    for event in events:
        account_id = accounts.get(event.account_ref)
        meter_id = meters.get(event.meter_ref)
        if account_id is None:
            unknown.append((event, f"unknown account '{event.account_ref[:120]}'"))
        elif meter_id is None:
            unknown.append((event, f"unknown meter '{event.meter_ref[:120]}'"))
        else:
            rows.append((event, account_id, meter_id))
    return Resolved(rows, unknown)


def ensure_partitions(months: Iterable[dt.date]) -> None:
    """Create the monthly partitions a batch needs, committed at once, once per process.

    Creating a partition locks the parent table until commit, so it must never happen
    inside a long ingest transaction: when the caller is in one, a separate connection
    does it.
    """
    missing = sorted({m.replace(day=1) for m in months} - _known_partitions)
    if not missing:
        return
    if connection.in_atomic_block and _this_transaction_locks_events():
        # Created in our own open transaction: it may yet roll back, so it is not cached.
        with connection.cursor() as cursor:
            for month in missing:
                cursor.execute("SELECT usage_ensure_partition(%s)", [month])
        return
    if connection.in_atomic_block:
        from revops.db import side_connection

        with side_connection() as side:
            for month in missing:
                side.execute("SELECT usage_ensure_partition(%s)", [month])
    else:
        with connection.cursor() as cursor:
            for month in missing:
                cursor.execute("SELECT usage_ensure_partition(%s)", [month])
    _known_partitions.update(missing)


def _this_transaction_locks_events() -> bool:
    """True when our open transaction already wrote to usage_event.

    Then a side connection would wait for our lock forever (a deadlock PostgreSQL cannot
    see), and creating the partition in our own transaction costs nothing more.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'usage_event'::regclass)"
        )
        return cursor.fetchone()[0]


def forget_known_partitions() -> None:
    """Retention dropped partitions: stop trusting the cache."""
    _known_partitions.clear()


def dedupe_within_batch(events: Sequence[EventIn]) -> tuple[list[EventIn], int]:
    """Keep the first event of each (source, id); later copies are duplicates."""
    seen: set[tuple[str, str]] = set()
    unique: list[EventIn] = []
    for event in events:
        identity = (event.source, event.event_id)
        if identity in seen:
            continue
        seen.add(identity)
        unique.append(event)
    return unique, len(events) - len(unique)


# ``{source}`` is a relation with key, source, event_id, account_id, meter_id, occurred_at,
# quantity, properties and at most one row per key: the API's temporary table, or the
# CSV import's view over its staging table.
STORE_SQL_TEMPLATE = """
WITH fresh AS (
    INSERT INTO usage_eventkey (key, occurred_at)
    SELECT key, occurred_at FROM {source} ORDER BY key
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), stored AS (
    INSERT INTO usage_event (key, source, event_id, account_id, meter_id, occurred_at, quantity, properties, received_at)
    SELECT i.key, i.source, i.event_id, i.account_id, i.meter_id, i.occurred_at, i.quantity, i.properties,
           %(received_at)s
    FROM {source} i JOIN fresh USING (key)
    RETURNING account_id, meter_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, quantity, properties
), deltas AS (
    INSERT INTO usage_rollupdelta (account_id, meter_id, day, quantity, event_count)
    SELECT account_id, meter_id, day, sum(quantity), count(*) FROM stored GROUP BY 1, 2, 3
    RETURNING day
), seen AS (
    -- One pass over the new events per (account, meter, workload, region), then one
    -- candidate per kind; candidates no earlier than the stored first day are dropped before
    -- the upsert, so a batch locks only the first-seen rows it really changes.
    INSERT INTO usage_firstseen (account_id, kind, value, first_day)
    SELECT g.account_id, k.kind, k.value, min(g.first_day)
    FROM (
        SELECT account_id, meter_id, properties->>'workload' AS workload, properties->>'region' AS region,
               min(day) AS first_day
        FROM stored GROUP BY 1, 2, 3, 4
    ) g
    JOIN usage_meter m ON m.id = g.meter_id
    CROSS JOIN LATERAL (VALUES ('meter', m.key::text), ('workload', g.workload), ('region', g.region)) AS k(kind, value)
    WHERE k.value IS NOT NULL AND k.value <> ''
    GROUP BY 1, 2, 3
    HAVING NOT EXISTS (
        SELECT 1 FROM usage_firstseen f
        WHERE f.account_id = g.account_id AND f.kind = k.kind AND f.value = k.value AND f.first_day <= min(g.first_day)
    )
    -- Concurrent batches lock shared first-seen rows in one global order: no deadlocks.
    ORDER BY 1, 2, 3
    ON CONFLICT (account_id, kind, value) DO UPDATE SET first_day = LEAST(usage_firstseen.first_day, EXCLUDED.first_day)
    WHERE EXCLUDED.first_day < usage_firstseen.first_day
    RETURNING 1
)
SELECT (SELECT count(*) FROM fresh), ARRAY(SELECT DISTINCT day FROM deltas), (SELECT count(*) FROM seen)
"""


def store_sql(source: str, *, all_new: bool = False) -> str:
    """The store statement over ``source``. ``all_new`` is for a caller that expects none of
    the keys to be stored yet (a backfill file): the keys go in with a plain INSERT, so one
    index descent per key instead of two, and every event follows without the join to the
    inserted keys. A key stored after all fails the statement with a unique violation on
    usage_eventkey_pkey; the caller rolls back to a savepoint and uses the general form."""
    sql = STORE_SQL_TEMPLATE.format(source=source)
    if not all_new:
        return sql
    general = ("    ON CONFLICT (key) DO NOTHING\n", f"FROM {source} i JOIN fresh USING (key)")
    fresh_only = ("", f"FROM {source} i")
    for old, new in zip(general, fresh_only, strict=True):
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def store_events(rows: Sequence[tuple[EventIn, int, int]], *, received_at: dt.datetime) -> StoreResult:
    """Store resolved events exactly once. Must run inside a transaction."""
    if not rows:
        return StoreResult()
    assert connection.in_atomic_block, "store_events must run inside transaction.atomic()"
    cursor = connection.cursor()
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ingest ("
        " key uuid, source text, event_id text, account_id bigint, meter_id bigint,"
        " occurred_at timestamptz, quantity numeric, properties jsonb) ON COMMIT DELETE ROWS"
    )
    cursor.execute("TRUNCATE _ingest")
    with cursor.copy(
        "COPY _ingest (key, source, event_id, account_id, meter_id, occurred_at, quantity, properties)"
        " FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "text", "text", "int8", "int8", "timestamptz", "numeric", "jsonb"])
        # In the order of usage_event's (account_id, occurred_at) index: the inserts that
        # follow from this table touch its pages in order.
        for event, account_id, meter_id in sorted(rows, key=lambda row: (row[1], row[0].occurred_at)):
            copy.write_row(
                (
                    event.key,
                    event.source,
                    event.event_id,
                    account_id,
                    meter_id,
                    event.occurred_at,
                    event.quantity,
                    _jsonb(event.properties),
                )
            )
    cursor.execute(STORE_SQL_TEMPLATE.format(source="_ingest"), {"received_at": received_at})
    accepted, days, _ = cursor.fetchone()
    return StoreResult(accepted=accepted, duplicates=len(rows) - accepted, touched_days=set(days))


def _jsonb(properties: dict) -> object:
    from psycopg.types.json import Jsonb

    return Jsonb(properties, dumps=_dumps)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


_QUARANTINE_SQL = """
INSERT INTO usage_quarantinedevent
    (source, event_id, account_ref, meter_ref, occurred_at, quantity, properties, reason, received_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::numeric[],
                     %s::jsonb[], %s::text[], %s::timestamptz[])
ON CONFLICT (source, event_id) DO NOTHING
"""


def quarantine_events(unknown: Sequence[tuple[EventIn, str]], *, received_at: dt.datetime) -> StoreResult:
    """Keep events with an unknown account or meter, once each, until they can be replayed."""
    if not unknown:
        return StoreResult()
    columns: list[list] = [[] for _ in range(9)]
    for event, reason in unknown:
        for column, value in zip(
            columns,
            (
                event.source,
                event.event_id,
                event.account_ref,
                event.meter_ref,
                event.occurred_at,
                event.quantity,
                _dumps(event.properties),
                reason,
                received_at,
            ),
            strict=True,
        ):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_QUARANTINE_SQL, columns)
        inserted = cursor.rowcount
    return StoreResult(quarantined=inserted, duplicates=len(unknown) - inserted)


def ingest_batch(events: Sequence[EventIn], *, received_at: dt.datetime) -> StoreResult:
    """Store a validated batch: new events, duplicates counted, unknown refs quarantined.

    Commits before returning (the API acknowledges only committed events) and schedules
    the rollup fold on commit.
    """
    unique, in_batch_duplicates = dedupe_within_batch(events)
    resolved = resolve_references(unique)
    ensure_partitions(event.occurred_at.date() for event, _, _ in resolved.rows)
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            with transaction.atomic():
                result = store_events(resolved.rows, received_at=received_at)
                result.add(quarantine_events(resolved.unknown, received_at=received_at))
                if result.accepted:
                    transaction.on_commit(enqueue_rollup_fold)
            break
        except OperationalError as exc:
            # Nothing was written: the whole batch is retried (its keys decide again).
            if not isinstance(exc.__cause__, DeadlockDetected) or attempt == DEADLOCK_RETRIES:
                raise
    result.duplicates += in_batch_duplicates
    return result
