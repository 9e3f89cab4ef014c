"""DailyRollup upkeep, all in SQL.

``fold_deltas`` moves the exact per-batch sums written by ``usage.ingestion.ingest`` into
``usage_dailyrollup`` (only the touched account × meter × day rows), then re-prices the
touched account × meter × months, because tiered prices depend on the month's volume.
It is single-flight (a transaction-scoped advisory lock) and idempotent: deltas are
deleted in the same transaction that adds them, so a re-run finds nothing to do.

``rebuild_from_events`` recomputes the rollups of every day that still has raw events
(the retention window) and must give the same rows as the incremental path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction

from usage import enqueue
from usage.ingestion.aggregates import REBUILD_INSERT_SQL

# Keys for pg_advisory_xact_lock: one per unit of work.
FOLD_LOCK = 7_201_001
BATCH_ROWS = 200_000
FOLD_WORK_MEM = "64MB"

_FOLD_SQL = """
WITH claimed AS (
    DELETE FROM usage_rollupdelta
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM usage_rollupdelta LIMIT %(limit)s))
    RETURNING account_id, meter_id, day, quantity, event_count
), summed AS (
    SELECT account_id, meter_id, day, sum(quantity) AS quantity, sum(event_count) AS event_count
    FROM claimed GROUP BY 1, 2, 3
), flat AS (
    -- Meters with a single open-ended tier: a day's revenue depends on that day alone.
    SELECT meter_id, min(unit_price) AS price FROM usage_metertier
    GROUP BY meter_id HAVING count(*) = 1 AND bool_and(up_to IS NULL)
), upserted AS (
    INSERT INTO usage_dailyrollup AS r (account_id, meter_id, day, quantity, revenue, event_count)
    SELECT s.account_id, s.meter_id, s.day, s.quantity, COALESCE(round(s.quantity * f.price, 6), 0), s.event_count
    FROM summed s LEFT JOIN flat f USING (meter_id)
    ON CONFLICT (account_id, meter_id, day) DO UPDATE
        SET quantity = r.quantity + EXCLUDED.quantity,
            event_count = r.event_count + EXCLUDED.event_count,
            revenue = COALESCE(
                round((r.quantity + EXCLUDED.quantity) * (SELECT f.price FROM flat f WHERE f.meter_id = r.meter_id), 6),
                r.revenue)
    RETURNING account_id, meter_id, day
)
-- Tiered meters price on the month's running volume: their months are re-priced next,
-- from the earliest touched day on (the volume before it did not change).
INSERT INTO _reprice_months (account_id, meter_id, month, from_day)
SELECT account_id, meter_id, date_trunc('month', day)::date, min(day) FROM upserted
WHERE meter_id NOT IN (SELECT meter_id FROM flat)
GROUP BY 1, 2, 3
ON CONFLICT (account_id, meter_id, month) DO UPDATE SET from_day = LEAST(_reprice_months.from_day, EXCLUDED.from_day)
"""

# Revenue of a day = price(month volume through that day) − price(volume before it), with
# each tier charging its unit price for the part of the volume that falls inside it.
_REPRICE_SQL = """
WITH tiers AS (
    SELECT meter_id, unit_price, COALESCE(up_to, 'Infinity'::numeric) AS upper,
           COALESCE(lag(up_to) OVER (PARTITION BY meter_id ORDER BY up_to NULLS LAST), 0) AS lower
    FROM usage_metertier
), days AS (
    -- The month's running volume needs every day of it; only days from from_day on can
    -- change price.
    SELECT r.id, r.meter_id, r.quantity, r.revenue, r.day >= t.from_day AS touched,
           COALESCE(sum(r.quantity) OVER (
               PARTITION BY r.account_id, r.meter_id, t.month ORDER BY r.day
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM _reprice_months t
    JOIN usage_dailyrollup r ON r.account_id = t.account_id AND r.meter_id = t.meter_id
     AND r.day >= t.month AND r.day < (t.month + interval '1 month')
), priced AS (
    SELECT d.id, d.revenue,
           round(COALESCE(sum(
               tiers.unit_price * GREATEST(0, LEAST(d.before + d.quantity, tiers.upper) - GREATEST(d.before, tiers.lower))
           ), 0), 6) AS new_revenue
    FROM days d LEFT JOIN tiers ON tiers.meter_id = d.meter_id
    WHERE d.touched
    GROUP BY d.id, d.revenue
)
UPDATE usage_dailyrollup r SET revenue = p.new_revenue
FROM priced p WHERE r.id = p.id AND r.revenue IS DISTINCT FROM p.new_revenue
"""


@dataclass(frozen=True)
class FoldResult:
    folded_deltas: int
    repriced_rows: int
    skipped_locked: bool = False


def _touched_table(cursor) -> None:
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _reprice_months (account_id bigint, meter_id bigint, month date,"
        " from_day date NOT NULL, PRIMARY KEY (account_id, meter_id, month)) ON COMMIT DELETE ROWS"
    )
    # Inside an outer transaction (a test, a seed) ON COMMIT has not emptied it yet.
    cursor.execute("TRUNCATE _reprice_months")


ROLLUPS_VERSION_KEY = "usage:rollups-version"


def rollups_version() -> int | None:
    """A number that changes whenever daily rollups change (every write path re-prices, and
    re-pricing bumps it on commit): caches of figures computed from rollups key on it.
    None when the cache is unreachable (callers then compute without caching)."""
    from django.core.cache import cache

    cache.add(ROLLUPS_VERSION_KEY, 0, timeout=None)
    return cache.get(ROLLUPS_VERSION_KEY)


def _bump_rollups_version() -> None:
    from django.core.cache import cache

    try:
        cache.add(ROLLUPS_VERSION_KEY, 0, timeout=None)
        cache.incr(ROLLUPS_VERSION_KEY)
    except ValueError:  # the key vanished between add and incr (evicted): start again
        cache.set(ROLLUPS_VERSION_KEY, 1, timeout=None)


def _reprice(cursor) -> int:
    """Re-price what ``_reprice_months`` lists; its statistics first, so the planner sizes
    the join with DailyRollup right (a temporary table is never auto-analyzed). Every
    rollup write goes through here, so this is where caches learn that rollups changed."""
    cursor.execute("ANALYZE _reprice_months")
    cursor.execute(_REPRICE_SQL)
    transaction.on_commit(_bump_rollups_version)
    return cursor.rowcount


def fold_deltas(*, limit: int = BATCH_ROWS, wait: bool = False) -> FoldResult:
    """Fold up to ``limit`` pending delta rows into DailyRollup, in one transaction.

    With ``wait=False`` a second concurrent caller returns at once (the first is doing
    the work); with ``wait=True`` it queues behind the lock.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return FoldResult(0, 0, skipped_locked=True)
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM usage_rollupdelta LIMIT %s) pending", [limit])
        pending = cursor.fetchone()[0]
        if not pending:
            return FoldResult(0, 0)
        # The claim's sums and the re-price's window sort fit in memory; no JIT for one run.
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        _touched_table(cursor)
        cursor.execute(_FOLD_SQL, {"limit": limit})
        repriced = _reprice(cursor)
    return FoldResult(pending, repriced)


def fold_all_deltas() -> int:
    """Fold until nothing is pending (waiting for a concurrent fold if needed)."""
    total = 0
    while True:
        result = fold_deltas(wait=True)
        total += result.folded_deltas
        if result.folded_deltas < BATCH_ROWS:
            return total


def fold_pending(*, rounds: int = 50) -> int:
    """What the fold task runs: fold while more deltas keep arriving, then have the metrics
    refreshed (late or new usage changed rollups; the pages should not wait for the night).

    Bounded to ``rounds`` batches: the beat safety net picks up anything left. If another
    fold holds the lock, it may have claimed before our rows arrived: look again soon.
    """
    folded = 0
    for _ in range(rounds):
        result = fold_deltas()
        if result.skipped_locked:
            enqueue.enqueue_rollup_fold(countdown=enqueue.FOLD_DEBOUNCE_S, debounce=False)
            break
        folded += result.folded_deltas
        if result.folded_deltas < BATCH_ROWS and not pending_delta_count():
            break
    if folded:
        enqueue.enqueue_metrics_refresh()
    return folded


def pending_delta_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_rollupdelta")
        return cursor.fetchone()[0]


def reprice_months(months: list[tuple[int, int, dt.date]]) -> int:
    """Re-price given (account, meter, month) rows, e.g. after a meter's tiers changed."""
    with transaction.atomic(), connection.cursor() as cursor:
        _touched_table(cursor)
        cursor.executemany(
            "INSERT INTO _reprice_months VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(a, m, month.replace(day=1), month.replace(day=1)) for a, m, month in months],
        )
        return _reprice(cursor)


def reprice_meters(meter_ids: list[int]) -> int:
    """Re-price every stored month of these meters (their tiers changed), under the fold lock
    so a concurrent fold cannot price a month with the old tiers after this."""
    if not meter_ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
        _touched_table(cursor)
        cursor.execute(
            "INSERT INTO _reprice_months SELECT DISTINCT account_id, meter_id, date_trunc('month', day)::date,"
            " date_trunc('month', day)::date FROM usage_dailyrollup WHERE meter_id = ANY(%s)",
            [list(meter_ids)],
        )
        return _reprice(cursor)


def raw_event_window() -> tuple[dt.date, dt.date] | None:
    """First and last day that still have raw events, from the partitions that exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min((occurred_at AT TIME ZONE 'UTC')::date), max((occurred_at AT TIME ZONE 'UTC')::date)"
            " FROM usage_event"
        )
        first, last = cursor.fetchone()
    return (first, last) if first else None


def rebuild_from_events() -> int:
    """Recompute rollups of every day with raw events; older days are left as they are.

    Pending deltas are folded first so days outside the raw window are complete, then the
    raw window is replaced in one transaction under the fold lock.
    """
    fold_all_deltas()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        # Ingests already writing finish first (their events become visible to us); new ones
        # wait at their delta insert until we commit, so no event is counted twice or lost.
        cursor.execute("LOCK TABLE usage_rollupdelta IN EXCLUSIVE MODE")
        cursor.execute(
            "SELECT min((occurred_at AT TIME ZONE 'UTC')::date), max((occurred_at AT TIME ZONE 'UTC')::date)"
            " FROM usage_event"
        )
        first, last = cursor.fetchone()
        if first is None:
            return 0
        # Covered by the rebuild below; deltas of older days (a warehouse's aggregates) are
        # left for the next fold.
        cursor.execute("DELETE FROM usage_rollupdelta WHERE day BETWEEN %s AND %s", [first, last])
        cursor.execute("DELETE FROM usage_dailyrollup WHERE day BETWEEN %s AND %s", [first, last])
        # Raw events and the external aggregates of the same days (usage.ingestion.aggregates).
        cursor.execute(REBUILD_INSERT_SQL, {"first": first, "last": last})
        rows = cursor.rowcount
        _touched_table(cursor)
        cursor.execute(
            "INSERT INTO _reprice_months SELECT DISTINCT account_id, meter_id, date_trunc('month', day)::date,"
            " date_trunc('month', day)::date FROM usage_dailyrollup WHERE day BETWEEN %s AND %s",
            [first.replace(day=1), last],
        )
        _reprice(cursor)
    return rows
