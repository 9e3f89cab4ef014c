"""Which months of daily rollups changed, for caches of figures computed from them.

A statement-level trigger on ``usage_dailyrollup`` (migration ``usage.0014``) records, for
every INSERT, UPDATE, DELETE or TRUNCATE, the months between the earliest and the latest day
it touched, each with a new number from one sequence (``RollupMonthChange``). Every write
path (the fold, re-pricing, the rebuild, warehouse aggregates, seeds) goes through it, and
the record commits or rolls back with the change.

``rollups_version(first=, last=)`` is the count and the sum of those numbers over the months
of a range: it changes exactly when a month in the range has changed since. (A sum, not a
maximum: two writers may commit out of sequence order, and the sum still moves.)
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

# A scalar subquery, so callers may read other versions in the same statement.
VERSION_SQL = """
(SELECT count(*) || '.' || coalesce(sum(seq), 0) FROM usage_rollupmonthchange
 WHERE month <= date_trunc('month', %(last)s::date)::date
   AND (%(first)s::date IS NULL OR month >= date_trunc('month', %(first)s::date)::date))
"""


def rollups_version(*, first: dt.date | None, last: dt.date) -> str:
    """A text that changes whenever a rollup of a month from ``first``'s (None: the first
    month there is) to ``last``'s is written or deleted."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + VERSION_SQL, {"first": first, "last": last})
        return cursor.fetchone()[0]
