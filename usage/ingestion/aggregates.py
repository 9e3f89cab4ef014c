"""External daily aggregates (a warehouse's account × meter × day totals) into the rollups.

An aggregate is the source's *current* total for its key, not an increment: a re-pull of a
day replaces what the source said before. ``usage_externaldailyaggregate`` keeps the last
value per (source, account, meter, day); ``apply_aggregates`` writes, per key, the difference
new − old into ``usage_rollupdelta`` (signed) and then stores the new value. From there the
existing path does the rest: ``fold_deltas`` adds the deltas to DailyRollup and re-prices
tiered months, the metrics refresh follows, so the same usage sent as events or as
aggregates gives the same rollup rows (``event_count`` is what the source says the total
stands for; 0 when it does not say).

``rebuild_from_events`` (usage.ingestion.rollups) adds the aggregates of the days it
recomputes, so a rebuild keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from usage.enqueue import enqueue_rollup_fold

# Serializes pulls of one source: the diff reads the stored values it then replaces.
AGGREGATE_LOCK_NAMESPACE = 7_201_002


@dataclass(frozen=True)
class AggregateResult:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0


# Read once (``rows`` may be a view doing the typing): stored in the order of the unique
# index (its inserts append instead of landing all over an index larger than memory), and
# the same rows, as returned, become the deltas.
_FIRST_PULL_SQL = """
WITH stored AS (
    INSERT INTO usage_externaldailyaggregate (source, account_id, meter_id, day, quantity, event_count)
    SELECT %(source)s, * FROM (
        -- Sorted without the source (a text column ahead of the keys makes every comparison
        -- deform the rows).
        SELECT account_id, meter_id, day, quantity, event_count FROM {rows} ORDER BY account_id, meter_id, day
    ) sorted
    RETURNING account_id, meter_id, day, quantity, event_count
)
INSERT INTO usage_rollupdelta (account_id, meter_id, day, quantity, event_count)
SELECT account_id, meter_id, day, quantity, event_count FROM stored
"""

_DIFF_SQL = """
WITH diff AS (
    SELECT n.account_id, n.meter_id, n.day, a.id IS NULL AS is_new,
           n.quantity - COALESCE(a.quantity, 0) AS quantity, n.event_count - COALESCE(a.event_count, 0) AS event_count
    FROM {rows} n
    LEFT JOIN usage_externaldailyaggregate a
      ON a.source = %(source)s AND a.account_id = n.account_id AND a.meter_id = n.meter_id AND a.day = n.day
), deltas AS (
    INSERT INTO usage_rollupdelta (account_id, meter_id, day, quantity, event_count)
    SELECT account_id, meter_id, day, quantity, event_count FROM diff
    WHERE is_new OR quantity <> 0 OR event_count <> 0
    RETURNING 1
)
SELECT count(*) FILTER (WHERE is_new),
       count(*) FILTER (WHERE NOT is_new AND (quantity <> 0 OR event_count <> 0)),
       count(*) FILTER (WHERE NOT is_new AND quantity = 0 AND event_count = 0),
       (SELECT count(*) FROM deltas)
FROM diff
"""

_UPSERT_SQL = """
INSERT INTO usage_externaldailyaggregate AS a (source, account_id, meter_id, day, quantity, event_count)
SELECT %(source)s, account_id, meter_id, day, quantity, event_count FROM {rows}
ON CONFLICT (source, account_id, meter_id, day) DO UPDATE
    SET quantity = EXCLUDED.quantity, event_count = EXCLUDED.event_count
    WHERE (a.quantity, a.event_count) IS DISTINCT FROM (EXCLUDED.quantity, EXCLUDED.event_count)
"""


def source_has_aggregates(source: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM usage_externaldailyaggregate WHERE source = %s)", [source])
        return cursor.fetchone()[0]


def lock_source(source: str) -> bool:
    """Take ``source``'s pull lock until the transaction ends (``apply_aggregates`` takes it
    too) and say whether the source has stored aggregates, which stays true or false while the
    lock is held: a caller may prepare a first pull's rows differently."""
    assert connection.in_atomic_block, "lock_source must run inside transaction.atomic()"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [AGGREGATE_LOCK_NAMESPACE, source])
    return source_has_aggregates(source)


def apply_aggregates(*, source: str, rows: str) -> AggregateResult:
    """Replace ``source``'s aggregates by the rows of the relation ``rows``.

    ``rows`` (a temporary table or view the caller filled and validated) has account_id,
    meter_id, day, quantity numeric(28, 6) and event_count bigint, at most one row per key;
    a first pull reads it once, later pulls twice (the diff, then the upsert). Runs in
    the caller's transaction (all or nothing) and sends the fold on commit. The first pull
    of a source (nothing stored yet) skips the diff: every row is new. A duplicate key that
    slipped through fails the statement (the unique index), never half-applies.
    """
    assert connection.in_atomic_block, "apply_aggregates must run inside transaction.atomic()"
    # ``rows`` is a temporary relation's name chosen by the caller, never user input.
    assert rows.isidentifier(), rows
    first_pull = not lock_source(source)
    with connection.cursor() as cursor:
        if first_pull:
            cursor.execute(_FIRST_PULL_SQL.format(rows=rows), {"source": source})
            result = AggregateResult(created=cursor.rowcount)
        else:
            cursor.execute(_DIFF_SQL.format(rows=rows), {"source": source})
            created, replaced, unchanged, _ = cursor.fetchone()
            cursor.execute(_UPSERT_SQL.format(rows=rows), {"source": source})
            result = AggregateResult(created=created, replaced=replaced, unchanged=unchanged)
    if result.created or result.replaced:
        transaction.on_commit(enqueue_rollup_fold)
    return result


# The rollup rows of days [first, last] from raw events and aggregates together (for
# ``rebuild_from_events``): the same sums the deltas fold to.
REBUILD_INSERT_SQL = """
INSERT INTO usage_dailyrollup (account_id, meter_id, day, quantity, revenue, event_count)
SELECT account_id, meter_id, day, sum(quantity), 0, sum(event_count)
FROM (
    SELECT account_id, meter_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, quantity, 1 AS event_count
    FROM usage_event
    UNION ALL
    SELECT account_id, meter_id, day, quantity, event_count
    FROM usage_externaldailyaggregate WHERE day BETWEEN %(first)s AND %(last)s
) usage
GROUP BY 1, 2, 3
"""
