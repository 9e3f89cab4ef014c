"""How good the forecasts were: snapshots scored against the actuals that arrived since.

For a horizon H (7, 30 or 90 days) each account's snapshot as of D is compared on its
H-day total, days D+1 … D+H, and only once all of those days have actuals:

* WAPE = Σ |actual − forecast| / Σ actual, over every scored (account, snapshot);
* bias = Σ (forecast − actual) / Σ actual (positive: the forecast was too high).

Beside the model sits the naive baseline, the trailing-30-day run rate as of the same D
carried forward (kept in each snapshot's components as ``naive_daily``).

Variable revenue is usage (the rollups): what the model forecasts. Fixed revenue is the
hybrid contracts' monthly base fee, accrued per day as base_fee × 12 / 365 while a
contract is in force. It is known, so its forecast is the contracted schedule of the
contracts signed by D; its actual is the schedule of every contract, so fixed error
comes only from contracts signed, or changed, after D. The two are scored separately.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from accounts.models import Account
from forecasting import engine
from forecasting.services import daily_revenue, history_for

HORIZONS = (7, 30, 90)
RATIO = Decimal("0.0001")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Score:
    wape: Decimal | None
    bias: Decimal | None
    actual: Decimal
    forecast: Decimal


@dataclass(frozen=True)
class HorizonScore:
    horizon: int
    model: Score
    naive: Score
    snapshots: int  # scored (account, as-of) pairs


def score(pairs: Iterable[tuple[Decimal, Decimal]]) -> Score:
    """WAPE and bias of (forecast, actual) totals; None when there was no actual revenue."""
    abs_err = err = actual_sum = forecast_sum = ZERO
    for forecast, actual in pairs:
        abs_err += abs(actual - forecast)
        err += forecast - actual
        actual_sum += actual
        forecast_sum += forecast
    if not actual_sum:
        return Score(None, None, actual_sum, forecast_sum)
    return Score(
        (abs_err / actual_sum).quantize(RATIO, rounding=ROUND_HALF_UP),
        (err / actual_sum).quantize(RATIO, rounding=ROUND_HALF_UP),
        actual_sum,
        forecast_sum,
    )


def last_actual_day() -> dt.date | None:
    """The newest day with any usage rollup: actuals are known up to here."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(day) FROM usage_dailyrollup")
        return cursor.fetchone()[0]


# --- Stored snapshots ---------------------------------------------------------------------

SNAPSHOT_SCORE_SQL = """
    WITH snap AS (
        SELECT f.id, f.account_id, f.as_of, (f.components ->> 'naive_daily')::numeric AS naive_daily
        FROM forecasting_accountforecast f
        WHERE f.as_of + %(h)s <= %(through)s
          AND (%(all)s OR f.account_id = ANY(%(accounts)s))
    )
    SELECT s.id,
           COALESCE((SELECT SUM(p.value) FROM forecasting_forecastpoint p
                     WHERE p.forecast_id = s.id AND p.days = 1 AND p.day <= s.as_of + %(h)s), 0),
           s.naive_daily * %(h)s,
           COALESCE((SELECT SUM(r.revenue) FROM usage_dailyrollup r
                     WHERE r.account_id = s.account_id AND r.day > s.as_of AND r.day <= s.as_of + %(h)s), 0)
    FROM snap s
"""


def snapshot_accuracy(
    *, horizon: int, account_ids: Sequence[int] | None = None, through: dt.date | None = None
) -> HorizonScore:
    """Score every stored snapshot whose ``horizon`` days of actuals have all arrived."""
    if not 1 <= horizon <= 90:
        raise ValueError("horizon must be 1–90 days (daily points are kept for 90 days)")
    through = through or last_actual_day()
    if through is None:
        return HorizonScore(horizon, score([]), score([]), 0)
    params = {"h": horizon, "through": through, "all": account_ids is None, "accounts": list(account_ids or [])}
    with connection.cursor() as cursor:
        cursor.execute(SNAPSHOT_SCORE_SQL, params)
        rows = cursor.fetchall()
    return HorizonScore(
        horizon,
        score((model, actual) for _, model, _, actual in rows),
        score((naive, actual) for _, _, naive, actual in rows),
        len(rows),
    )


# --- Backtest (nothing stored) ---------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRow:
    horizon: int
    model: Score
    naive: Score
    snapshots: int
    fixed: Score


def backtest(
    *,
    first: dt.date,
    last: dt.date,
    every: int = 7,
    horizons: Sequence[int] = HORIZONS,
    account_ids: Sequence[int] | None = None,
    through: dt.date | None = None,
    batch: int = 500,
) -> list[BacktestRow]:
    """Replay the forecast as of ``first``, ``first + every`` … ``last`` and score each against the
    actuals after it (only horizons whose days have all arrived by ``through``)."""
    through = through or last_actual_day()
    ids = (
        list(account_ids)
        if account_ids is not None
        else list(Account.objects.order_by("pk").values_list("pk", flat=True))
    )
    longest = max(horizons)
    pairs: dict[int, list[tuple[Decimal, Decimal, Decimal]]] = {h: [] for h in horizons}
    fixed: dict[int, list[tuple[Decimal, Decimal]]] = {h: [] for h in horizons}
    day = first
    while through is not None and day <= last:
        usable = [h for h in horizons if day + dt.timedelta(days=h) <= through]
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            history = history_for(chunk, as_of=day)
            actuals = daily_revenue(chunk, first=day + dt.timedelta(days=1), last=day + dt.timedelta(days=longest))
            for pk in chunk:
                if not usable:
                    break
                result = engine.forecast_account_series(history[pk], horizon=longest, intervals=False)
                naive = engine.run_rate(history[pk])
                for h in usable:
                    model = sum((p.value for p in result.points[:h]), ZERO)
                    actual = sum(actuals[pk][:h], ZERO)
                    if model or actual:  # accounts with neither revenue nor forecast add nothing
                        pairs[h].append((model, naive * h, actual))
            for h in usable:
                fixed[h].extend(fixed_pairs(chunk, as_of=day, horizon=h))
        day += dt.timedelta(days=every)
    return [
        BacktestRow(
            h,
            score((m, a) for m, _, a in pairs[h]),
            score((n, a) for _, n, a in pairs[h]),
            len(pairs[h]),
            score(fixed[h]),
        )
        for h in horizons
    ]


FIXED_SQL = """
    SELECT account_id,
           SUM(CASE WHEN signed_on <= %(as_of)s THEN base_fee * days ELSE 0 END) * 12 / 365,
           SUM(base_fee * days) * 12 / 365
    FROM (
        SELECT account_id, signed_on, base_fee,
               GREATEST(0, LEAST(end_on, %(end)s) - GREATEST(start_on, %(start)s) + 1) AS days
        FROM accounts_contract
        WHERE pricing_model = 'hybrid' AND base_fee IS NOT NULL AND account_id = ANY(%(accounts)s)
    ) c
    GROUP BY account_id
"""


def fixed_pairs(account_ids: Sequence[int], *, as_of: dt.date, horizon: int) -> list[tuple[Decimal, Decimal]]:
    """(forecast, actual) fixed revenue for days as_of+1 … as_of+horizon, per account with a hybrid fee."""
    params = {
        "as_of": as_of,
        "start": as_of + dt.timedelta(days=1),
        "end": as_of + dt.timedelta(days=horizon),
        "accounts": list(account_ids),
    }
    with connection.cursor() as cursor:
        cursor.execute(FIXED_SQL, params)
        return [(Decimal(f), Decimal(a)) for _, f, a in cursor.fetchall() if f or a]


def format_table(rows: Sequence[BacktestRow]) -> str:
    """The backtest as a plain-text table (one line per horizon)."""

    def pct(x: Decimal | None) -> str:
        return "—" if x is None else f"{x * 100:.1f}%"

    lines = [
        f"{'horizon':>7}  {'pairs':>6}  {'model WAPE':>10}  {'naive WAPE':>10}  {'model bias':>10}  "
        f"{'naive bias':>10}  {'fixed WAPE':>10}",
    ]
    for r in rows:
        lines.append(
            f"{r.horizon:>6}d  {r.snapshots:>6}  {pct(r.model.wape):>10}  {pct(r.naive.wape):>10}  "
            f"{pct(r.model.bias):>10}  {pct(r.naive.bias):>10}  {pct(r.fixed.wape):>10}"
        )
    return "\n".join(lines)
