"""The nightly forecast job: every account's own daily revenue, forecast and kept as a snapshot.

``run_forecasts`` reads each batch's daily revenue (the last 365 days up to ``as_of``,
summed over meters, one SQL statement per batch), forecasts each account with
``forecasting.engine`` and writes the snapshot. Accounts under 8 weeks old follow their
segment's cohort ramp curve (``cohort_curves``: computed once per run from the land
trajectories as of ``as_of``, so a backdated run sees only data up to that day), placed
on it by the months since their own land was signed (``cohort_days``). Accounts
that already have a snapshot for ``as_of`` are skipped, so a re-run or an overlapping
shard changes nothing. Shards split accounts by ``id % shards``; the engine is
deterministic, so one run or N shards write the same numbers.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.db.models.functions import Mod
from django.utils import timezone

from accounts.models import Account, Contract
from forecasting import cohorts, engine
from forecasting.models import AccountForecast, ForecastPoint, ForecastRun

HISTORY_DAYS = 365
HORIZON = 365
DAILY_DAYS = 90  # points stored daily up to here, then as 7-day sums (see models)
TOTAL_HORIZONS = (90, 180, 365)  # totals stored on each snapshot, with their intervals
BATCH = 250
# Writes of a batch tried before giving up (each retry follows a concurrent writer's commit).
WRITE_ATTEMPTS = 3

DAILY_REVENUE_SQL = """
    SELECT account_id, day, SUM(revenue)
    FROM usage_dailyrollup
    WHERE account_id = ANY(%s) AND day BETWEEN %s AND %s
    GROUP BY account_id, day
"""


class ForecastError(Exception):
    """A forecast request that cannot be met (bad shard, bad dates)."""


def daily_revenue(account_ids: Sequence[int], *, first: dt.date, last: dt.date) -> dict[int, list[Decimal]]:
    """Each account's own revenue per day from ``first`` to ``last`` inclusive (zeros filled)."""
    days = (last - first).days + 1
    series = {pk: [Decimal(0)] * days for pk in account_ids}
    with connection.cursor() as cursor:
        cursor.execute(DAILY_REVENUE_SQL, [list(account_ids), first, last])
        for account_id, day, revenue in cursor.fetchall():
            series[account_id][(day - first).days] = revenue
    return series


def history_for(account_ids: Sequence[int], *, as_of: dt.date) -> dict[int, list[Decimal]]:
    return daily_revenue(account_ids, first=as_of - dt.timedelta(days=HISTORY_DAYS - 1), last=as_of)


def shard_account_ids(*, shard: int | None, shards: int) -> list[int]:
    if shards < 1 or (shard is not None and not 0 <= shard < shards):
        raise ForecastError(f"shard must be in 0..{shards - 1} with shards ≥ 1 (got {shard} of {shards})")
    accounts = Account.objects.order_by("pk")
    if shard is not None:
        accounts = accounts.annotate(bucket=Mod("pk", shards)).filter(bucket=shard)
    return list(accounts.values_list("pk", flat=True))


def cohort_curves(*, as_of: dt.date) -> dict[str, list[Decimal]]:
    """Each segment's pooled median ramp (normalized monthly revenue, month 1 first) as of ``as_of``,
    cut at its level-off month (flat after it); segments without a median are left out."""
    ramps = cohorts.segment_ramps(cohorts.land_trajectories(as_of=as_of))
    return {
        segment: ramp.median[: ramp.level_off] if ramp.level_off else ramp.median
        for segment, ramp in ramps.items()
        if ramp.median
    }


def cohort_days(account_ids: Sequence[int], *, as_of: dt.date) -> dict[int, int]:
    """Where ``as_of`` falls on each account's cohort curve: days since the first day of its land's
    signing month (the curves' month 1). Accounts without a contract signed by ``as_of`` are left out."""
    lands = (
        Contract.objects.filter(account_id__in=account_ids, signed_on__lte=as_of)
        .values("account_id")
        .annotate(land=Min("signed_on"))
        .values_list("account_id", "land")
    )
    return {pk: (as_of - land.replace(day=1)).days for pk, land in lands}


def _batches(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def stored_points(forecast: engine.SeriesForecast, *, as_of: dt.date) -> list[tuple[dt.date, int, engine.Point]]:
    """(day, days, point) rows: daily for the first DAILY_DAYS, then 7-day sums."""
    rows = [(as_of + dt.timedelta(days=p.offset), 1, p) for p in forecast.points[:DAILY_DAYS]]
    horizon = len(forecast.points)
    for p in forecast.weekly(DAILY_DAYS + 1):
        rows.append((as_of + dt.timedelta(days=p.offset), min(engine.SEASON, horizon - p.offset + 1), p))
    return rows


@dataclass
class RunResult:
    as_of: dt.date
    accounts: int
    skipped: int
    seconds: float
    methods: dict[str, int]


def run_forecasts(*, as_of: dt.date, shard: int | None = None, shards: int = 1, batch: int = BATCH) -> RunResult:
    """Forecast every account (or one shard) as of ``as_of`` and store the snapshots. Safe to run twice."""
    started = time.monotonic()
    ids = shard_account_ids(shard=shard, shards=shards)
    run = ForecastRun.objects.create(as_of=as_of, shard=shard or 0, shards=shards, started_at=timezone.now())
    curves: dict[str, list[Decimal]] | None = None  # read once, when the first account needs forecasting
    done = skipped = 0
    methods: dict[str, int] = {}
    for chunk in _batches(ids, batch):
        existing = set(
            AccountForecast.objects.filter(as_of=as_of, account_id__in=chunk).values_list("account_id", flat=True)
        )
        todo = [pk for pk in chunk if pk not in existing]
        skipped += len(existing)
        if not todo:
            continue
        if curves is None:
            curves = cohort_curves(as_of=as_of)
        # Fit outside the transaction: a batch of fits takes seconds and holds no locks.
        segments = dict(Account.objects.filter(pk__in=todo).values_list("pk", "segment"))
        positions = cohort_days(todo, as_of=as_of)  # no land, no place on a cohort curve
        forecasts = {
            pk: _prepare(
                engine.forecast_account_series(
                    values,
                    horizon=HORIZON,
                    cohort_curve=curves.get(segments[pk]) if pk in positions else None,
                    cohort_day=positions.get(pk),
                ),
                as_of=as_of,
            )
            for pk, values in history_for(todo, as_of=as_of).items()
        }
        written = _write(forecasts, as_of=as_of)
        done += written
        skipped += len(todo) - written
        for pk in forecasts:
            methods[forecasts[pk].method] = methods.get(forecasts[pk].method, 0) + 1
    seconds = time.monotonic() - started
    ForecastRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(), accounts=done, skipped=skipped, seconds=round(seconds, 3)
    )
    return RunResult(as_of=as_of, accounts=done, skipped=skipped, seconds=seconds, methods=methods)


@dataclass
class _Prepared:
    method: str
    history_days: int
    components: dict
    rows: list[tuple[dt.date, int, engine.Point]]
    totals: dict[str, Decimal]  # AccountForecast's naive_daily and next_{h}[_lower|_upper] fields


def horizon_totals(forecast: engine.SeriesForecast) -> dict[str, Decimal]:
    """The 90/180/365-day totals with the 80% interval of each total (not a sum of daily bounds)."""
    fields = {"naive_daily": Decimal(forecast.components.get("naive_daily", "0")).quantize(engine.CENT)}
    for horizon, total in zip(TOTAL_HORIZONS, forecast.sums([(1, h) for h in TOTAL_HORIZONS]), strict=True):
        fields |= {
            f"next_{horizon}": total.value,
            f"next_{horizon}_lower": total.lower,
            f"next_{horizon}_upper": total.upper,
        }
    return fields


def _prepare(forecast: engine.SeriesForecast, *, as_of: dt.date) -> _Prepared:
    # A "none" forecast stores no points: its revenue is zero every day.
    rows = [] if forecast.method == "none" else stored_points(forecast, as_of=as_of)
    return _Prepared(forecast.method, forecast.history_days, forecast.components, rows, horizon_totals(forecast))


def _write(forecasts: dict[int, _Prepared], *, as_of: dt.date) -> int:
    """Insert the snapshots not already there; returns how many were written.

    Shards write disjoint accounts at the same time, so nothing serializes them: the unique
    (account, day) constraint is the guard. When another writer stored one of these
    accounts between the look and the insert (a re-run overlapping a running shard), the
    insert waits for it, fails, and the batch is written again without it.
    """
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return _write_new(forecasts, as_of=as_of)
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _write_new(forecasts: dict[int, _Prepared], *, as_of: dt.date) -> int:
    existing = set(
        AccountForecast.objects.filter(as_of=as_of, account_id__in=list(forecasts)).values_list("account_id", flat=True)
    )
    new = [pk for pk in forecasts if pk not in existing]
    headers = AccountForecast.objects.bulk_create(
        AccountForecast(
            account_id=pk,
            as_of=as_of,
            method=forecasts[pk].method,
            history_days=forecasts[pk].history_days,
            components=forecasts[pk].components,
            **forecasts[pk].totals,
        )
        for pk in new
    )
    ForecastPoint.objects.bulk_create(
        (
            ForecastPoint(forecast=header, day=day, days=days, value=p.value, lower=p.lower, upper=p.upper)
            for header in headers
            for day, days, p in forecasts[header.account_id].rows
        ),
        batch_size=5000,
    )
    return len(new)


def _run_shard(as_of: dt.date, shard: int, shards: int) -> RunResult:
    from django.db import connections

    connections.close_all()  # a forked child must not share its parent's connection
    try:
        return run_forecasts(as_of=as_of, shard=shard, shards=shards)
    finally:
        connections.close_all()


def run_forecasts_parallel(*, as_of: dt.date, processes: int = 2, meanwhile=None) -> RunResult:
    """``run_forecasts`` split into ``processes`` shards run at once in forked processes (the
    demo seed and the command use it; the nightly job spreads shards over Celery workers
    instead). The engine is deterministic, so the result is what one process would store.

    ``meanwhile`` (a callable) runs in this process while the shards work, for a caller with
    other work that does not need the forecasts (the demo seed runs comp meanwhile)."""
    import multiprocessing

    from django.db import connections

    started = time.monotonic()
    if connection.in_atomic_block:
        # Other processes cannot see this transaction's rows: forecast here, one shard after another.
        if meanwhile is not None:
            meanwhile()
        results = [run_forecasts(as_of=as_of, shard=shard, shards=processes) for shard in range(processes)]
        return _combined(as_of, results, started)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with context.Pool(max(1, processes)) as pool:
        pending = pool.starmap_async(_run_shard, [(as_of, shard, processes) for shard in range(processes)])
        if meanwhile is not None:
            meanwhile()
        results = pending.get()
    return _combined(as_of, results, started)


def _combined(as_of: dt.date, results: Sequence[RunResult], started: float) -> RunResult:
    methods: dict[str, int] = {}
    for result in results:
        for method, n in result.methods.items():
            methods[method] = methods.get(method, 0) + n
    return RunResult(
        as_of=as_of,
        accounts=sum(r.accounts for r in results),
        skipped=sum(r.skipped for r in results),
        seconds=time.monotonic() - started,
        methods=methods,
    )
