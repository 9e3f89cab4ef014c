"""Planning computations kept per as-of date until the data under them changes.

The cohort ramps, the deal desk's trajectories and the waterfall's account periods each read
months of daily rollups and every contract (1–2 s at 5,000 accounts). They depend only on
the rollups of a known range of days and on accounts and contracts, so a result is kept under
a key made of its arguments and two versions:

- ``usage.ingestion.changes.rollups_version(first=, last=)`` (read here in the same query): changes whenever a rollup of a
  month in the range is written or deleted (a database trigger records the months), so
  today's ingest does not throw away a waterfall of last year;
- the newest audit event of accounts and contracts (every write to them is audited by a
  trigger, imports included).

The cache is Redis (revops.cache): while it is unreachable everything is computed as before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import connection

from forecasting import cohorts as cohort_analysis
from forecasting import waterfall as realization
from usage.ingestion.changes import VERSION_SQL

logger = logging.getLogger(__name__)
T = TypeVar("T")

PLANNING_CACHE_S = 6 * 3600
KEY_VERSION = "v1"


# The newest audit event of accounts and contracts (their primary keys: two index lookups).
ACCOUNTS_VERSION_SQL = (
    "coalesce((SELECT max(pgh_id) FROM accounts_accountevent), 0) || '.' ||"
    " coalesce((SELECT max(pgh_id) FROM accounts_contractevent), 0)"
)


def accounts_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ACCOUNTS_VERSION_SQL)
        return cursor.fetchone()[0]


def versions(*, first: dt.date | None, last: dt.date) -> str:
    """The rollups' version over the range and the accounts' version, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {VERSION_SQL} || ':' || {ACCOUNTS_VERSION_SQL}", {"first": first, "last": last})
        return cursor.fetchone()[0]


def _kept(name: str, args: tuple, *, first: dt.date | None, last: dt.date, compute: Callable[[], T]) -> T:
    key = ":".join(
        [
            "forecasting:planning",
            KEY_VERSION,
            name,
            *(str(a) for a in args),
            versions(first=first, last=last),
        ]
    )
    found = cache.get(key)
    if found is not None:
        return found
    result = compute()
    cache.set(key, result, timeout=PLANNING_CACHE_S)
    return result


def land_trajectories(*, as_of: dt.date, segment: str = "") -> list[cohort_analysis.LandTrajectory]:
    """``cohorts.land_trajectories``: reads every rollup up to ``as_of`` (the first day of
    usage included), so any change on or before it counts."""
    return _kept(
        "trajectories",
        (as_of, segment),
        first=None,
        last=as_of,
        compute=lambda: cohort_analysis.land_trajectories(as_of=as_of, segment=segment),
    )


def segment_ramps(*, as_of: dt.date, segment: str = "") -> dict[str, cohort_analysis.Cohort]:
    """``cohorts.segment_ramps`` of the trajectories above (the level-off fit per segment)."""
    return _kept(
        "ramps",
        (as_of, segment),
        first=None,
        last=as_of,
        compute=lambda: cohort_analysis.segment_ramps(land_trajectories(as_of=as_of, segment=segment)),
    )


def period_rows(*, start: dt.date, end: dt.date, segment: str = "") -> list[realization.AccountPeriod]:
    """``waterfall.period_rows``: run rates at the start, the end and a year before the end
    (each over the run-rate window), and contracts."""
    first = min(start, end - dt.timedelta(days=365)) - dt.timedelta(days=realization.RUN_RATE_DAYS)
    return _kept(
        "periods",
        (start, end, segment),
        first=first,
        last=end,
        compute=lambda: realization.period_rows(start=start, end=end, segment=segment),
    )


def snapshot_accuracy(*, scope_id: str, account_ids: Callable[[], list[int]], horizons: tuple[int, ...]):
    """``accuracy.snapshot_accuracy`` of a scope for each horizon: scores every stored snapshot
    against the rollups that arrived after it (0.8 s at 20,000 accounts). Kept until a
    snapshot is stored, a rollup changes, the day turns (the scope's accounts come from
    ownership today) or the accounts change; ``account_ids`` is only called when computing."""
    from forecasting import accuracy
    from forecasting.models import AccountForecast
    from revops.clock import today_utc

    through = accuracy.last_actual_day()
    snapshots = AccountForecast.objects.count()

    def compute():
        ids = account_ids()
        return [accuracy.snapshot_accuracy(horizon=h, account_ids=ids, through=through) for h in horizons]

    return _kept(
        "accuracy",
        (scope_id, "-".join(map(str, horizons)), through, snapshots, today_utc()),
        first=None,
        last=through or today_utc(),
        compute=compute,
    )
