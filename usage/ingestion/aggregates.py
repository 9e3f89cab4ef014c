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
        SELECT account_id, meter_id, day, quantity, event_count FROM {rows} ORDER BY day, account_id, meter_id
    ) sorted
    RETURNING account_id, meter_id, day, quantity, event_count
)
INSERT INTO usage_rollupdelta (account_id, meter_id, day, quantity, event_count)
SELECT account_id, meter_id, day, quantity, event_count FROM stored
"""

# Later pulls, in one statement: each incoming row is looked up once in the unique index
# (the LEFT JOIN); the rows that changed are then updated through the physical address that
# look-up found (a TID scan, no second index search), the new ones inserted, and the
# differences written as deltas. The source's pull lock (``lock_source``) keeps other pulls
# of the source from changing the rows between the look-up and the update; a row deleted in
# between (its account removed) is simply not updated.
_REPLACE_SQL = """
WITH incoming AS (
    SELECT n.account_id, n.meter_id, n.day, n.quantity, n.event_count,
           a.ctid AS stored_at, a.quantity AS old_quantity, a.event_count AS old_event_count
    FROM {rows} n
    LEFT JOIN usage_externaldailyaggregate a
      ON a.source = %(source)s AND a.day = n.day AND a.account_id = n.account_id AND a.meter_id = n.meter_id
), diff AS (
    SELECT account_id, meter_id, day, quantity, event_count, stored_at, stored_at IS NULL AS is_new,
           quantity - COALESCE(old_quantity, 0) AS delta_quantity,
           event_count - COALESCE(old_event_count, 0) AS delta_event_count
    FROM incoming
), updated AS (
    UPDATE usage_externaldailyaggregate a SET quantity = d.quantity, event_count = d.event_count
    FROM diff d
    WHERE a.ctid = d.stored_at AND (d.delta_quantity <> 0 OR d.delta_event_count <> 0)
    RETURNING 1
), inserted AS (
    INSERT INTO usage_externaldailyaggregate (source, account_id, meter_id, day, quantity, event_count)
    SELECT %(source)s, account_id, meter_id, day, quantity, event_count FROM diff WHERE is_new
    RETURNING 1
), deltas AS (
    INSERT INTO usage_rollupdelta (account_id, meter_id, day, quantity, event_count)
    SELECT account_id, meter_id, day, delta_quantity, delta_event_count FROM diff
    WHERE is_new OR delta_quantity <> 0 OR delta_event_count <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted),
       (SELECT count(*) FROM updated),
       count(*) FILTER (WHERE NOT is_new AND delta_quantity = 0 AND delta_event_count = 0),
       (SELECT count(*) FROM deltas)
FROM diff
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
    each pull reads it once. Runs in
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
            cursor.execute(_REPLACE_SQL.format(rows=rows), {"source": source})
            created, replaced, unchanged, _ = cursor.fetchone()
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
