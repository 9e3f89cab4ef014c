"""Forecast one account's daily revenue: pure functions, no database, no clock.

``forecast_account_series`` takes the account's own daily revenue (oldest first, ending
on the as-of day, summed over meters, hierarchy not rolled) and returns daily points
with 80% prediction intervals:

* "ets" (at least ``MIN_HISTORY_DAYS`` = 8 weeks of history since first usage): Holt-Winters
  exponential smoothing with an additive damped trend and additive weekly seasonality
  (statsmodels). Intervals are the 10th and 90th percentiles of ``SIMULATIONS`` simulated
  future paths (Gaussian errors with the fitted residual variance), so
  they widen with the horizon; weekly sums take percentiles of the simulated weekly sums.
* "run_rate" (shorter history): the trailing-30-day mean carried forward; the interval is
  that mean ± 1.28 daily standard deviations, widened by √(1 + h/30) for drift. This is a
  deliberately plain fallback; a cohort trajectory (``forecasting.cohorts``) may replace it.
* "none": no revenue at all in the history: zero.

Floats are used inside the model; values become Decimal (2 places) once, at the end.
Everything is deterministic (fixed simulation seed), so shards and re-runs agree.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MIN_HISTORY_DAYS = 56
RUN_RATE_DAYS = 30
SEASON = 7
SIMULATIONS = 500
SEED = 20260101
Z80 = 1.2816  # the 90th percentile of the standard normal: an 80% two-sided interval


@dataclass(frozen=True)
class Point:
    offset: int  # 1 = the day after as-of
    value: Decimal
    lower: Decimal
    upper: Decimal


@dataclass
class SeriesForecast:
    method: str
    history_days: int
    points: list[Point]
    components: dict = field(default_factory=dict)
    # Daily paths behind the intervals (horizon × n); None for closed-form methods.
    _paths: object = field(default=None, repr=False)

    def weekly(self, start: int) -> list[Point]:
        """Points from offset ``start`` on, summed in 7-day buckets (the last may be shorter)."""
        out = []
        for first in range(start, len(self.points) + 1, SEASON):
            chunk = self.points[first - 1 : first - 1 + SEASON]
            value = sum((p.value for p in chunk), Decimal(0))
            if self._paths is not None:
                # Percentiles of the simulated weekly sums: narrower than summing daily bounds.
                low, high = _quantiles(self._paths[first - 1 : first - 1 + SEASON].sum(axis=0))
                lower, upper = min(_money(low), value), max(_money(high), value)
            else:
                # Closed-form intervals: a week's bounds are the sums of the daily bounds (conservative).
                lower = sum((p.lower for p in chunk), Decimal(0))
                upper = sum((p.upper for p in chunk), Decimal(0))
            out.append(Point(first, value, lower, upper))
        return out


def _money(x: float) -> Decimal:
    return Decimal(repr(max(0.0, float(x)))).quantize(CENT, rounding=ROUND_HALF_UP)


def _quantiles(values) -> tuple[float, float]:
    import numpy as np

    low, high = np.percentile(values, [10, 90])
    return float(low), float(high)


def trim_leading_zeros(values: Sequence[Decimal]) -> list[Decimal]:
    """History starts at the first day with revenue (days before first usage are not zeros)."""
    for i, v in enumerate(values):
        if v:
            return list(values[i:])
    return []


def run_rate(values: Sequence[Decimal], days: int = RUN_RATE_DAYS) -> Decimal:
    """The naive baseline: mean daily revenue over the trailing ``days`` (zeros count)."""
    tail = list(values[-days:])
    if not tail:
        return Decimal(0)
    return sum(tail, Decimal(0)) / Decimal(days)


def forecast_account_series(values: Sequence[Decimal], *, horizon: int = 365, intervals: bool = True) -> SeriesForecast:
    """Forecast ``horizon`` days after the last value; see the module docstring for methods."""
    history = trim_leading_zeros(values)
    naive = run_rate(values)
    components = {"naive_daily": str(naive.quantize(Decimal("0.000001")))}
    if not history:
        zero = Decimal("0.00")
        return SeriesForecast("none", 0, [Point(h, zero, zero, zero) for h in range(1, horizon + 1)], components)
    if len(history) < MIN_HISTORY_DAYS or not any(history[-RUN_RATE_DAYS:]):
        return _run_rate_forecast(history, horizon, components)
    return _ets_forecast(history, horizon, components, intervals=intervals)


def _run_rate_forecast(history: list[Decimal], horizon: int, components: dict) -> SeriesForecast:
    tail = [float(v) for v in history[-RUN_RATE_DAYS:]]
    mean = sum(tail) / len(tail)
    sd = statistics.pstdev(tail) if len(tail) > 1 else mean
    # Wide on purpose: little history says little about the level, let alone the trend.
    sd = max(sd, 0.25 * mean)
    points = []
    for h in range(1, horizon + 1):
        spread = Z80 * sd * math.sqrt(1 + h / RUN_RATE_DAYS)
        points.append(Point(h, _money(mean), _money(mean - spread), _money(mean + spread)))
    components |= {"mean": round(mean, 6), "sd": round(sd, 6)}
    return SeriesForecast("run_rate", len(history), points, components)


def _ets_forecast(history: list[Decimal], horizon: int, components: dict, *, intervals: bool) -> SeriesForecast:
    # Imported here: statsmodels and numpy take a second to import and only this job needs them.
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.array([float(v) for v in history])
    with warnings.catch_warnings():
        # Convergence chatter on flat or intermittent series; the fit is still usable.
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=SEASON,
            # Heuristic start values (from the first cycles) instead of optimising 9 more parameters: 5×
            # faster on the 5,000-account bench with near-identical forecasts.
            initialization_method="heuristic",
        ).fit(use_brute=False)  # the brute-force start grid costs 10× and rarely changes the fit
        mean = np.clip(fit.forecast(horizon), 0, None)
        paths = None
        if intervals:
            paths = fit.simulate(horizon, repetitions=SIMULATIONS, error="add", anchor="end", random_state=SEED)
            paths = np.clip(np.asarray(paths).reshape(horizon, SIMULATIONS), 0, None)
    if paths is not None:
        lows, highs = np.percentile(paths, [10, 90], axis=1)
    else:
        lows = highs = mean
    points = [
        Point(h + 1, _money(mean[h]), _money(min(lows[h], mean[h])), _money(max(highs[h], mean[h])))
        for h in range(horizon)
    ]
    params = fit.params
    components |= {
        "alpha": round(float(params["smoothing_level"]), 6),
        "beta": round(float(params["smoothing_trend"]), 6),
        "gamma": round(float(params["smoothing_seasonal"]), 6),
        "phi": round(float(params["damping_trend"]), 6),
        "level": round(float(fit.level[-1]), 6),
        "trend": round(float(fit.trend[-1]), 6),
        "seasonal": [round(float(s), 6) for s in fit.season[-SEASON:]],
        "sigma": round(float(np.sqrt(fit.sse / max(len(y) - 1, 1))), 6),
    }
    return SeriesForecast("ets", len(history), points, components, paths)
