"""Forecast one account's daily revenue: pure functions, no database, no clock.

``forecast_account_series`` takes the account's own daily revenue (oldest first, ending
on the as-of day, summed over meters, hierarchy not rolled) and returns daily points
with 80% prediction intervals:

* "ets" (at least ``MIN_HISTORY_DAYS`` = 8 weeks of history since first usage): Holt-Winters
  exponential smoothing with an additive damped trend and additive weekly seasonality
  (statsmodels ``ExponentialSmoothing``, m = 7). The mean and the intervals come in closed
  form from the fitted model's own recursions (statsmodels' Holt-Winters updates:
  l_t = α(y_t − s_{t−m}) + (1−α)(l_{t−1} + φb_{t−1}), b_t = β*(l_t − l_{t−1}) + (1−β*)φb_{t−1},
  s_t = γ(y_t − l_{t−1} − φb_{t−1}) + (1−γ)s_{t−m}) written in innovations form, with the
  fitted α, β* (``smoothing_trend``), γ and φ and the last fitted level l_T, trend b_T and
  seasons s::

      y_{T+h} = l_T + (φ + … + φ^h)·b_T + s_{T+h−m·k} + e_{T+h} + Σ_{j=1}^{h−1} c_j·e_{T+h−j}
      c_j = α + α·β*·(φ + … + φ^j) + γ·[j mod m = 0],   e ~ N(0, σ²) independent,

  (statsmodels' ``simulate`` puts β* where α·β* belongs, which inflates the trend's noise by
  1/α: a year out, intervals ten times the forecast on the demo data)

  with k = ⌈h/m⌉ (the last fitted season of that weekday) and σ² = Σ resid² / (n − 13)
  as statsmodels computes it (resid = y − fitted values, 13 = the model's parameter
  count). The mean is the first line without the errors. It equals statsmodels'
  ``forecast`` except at h = m, 2m, …, where statsmodels 0.14 uses the season one cycle
  older, s_{T−m} (statsmodels#9538, fixed upstream by #10230); ``simulate`` uses s_T, as
  here. A day's variance is σ²·(1 + Σ_{j<h} c_j²); the variance of a sum over days
  (a week, a horizon's total) is σ² times the squared norm of the sum of those days' rows
  of the lower-triangular Toeplitz matrix C (C[d, i] = c_{d−i}, c_0 = 1). The 80% interval is
  mean ± 1.2816 sd, then clipped at zero with the mean. Clipping a daily value at zero
  commutes with its quantiles, so daily bounds are exactly the 10th and 90th percentiles
  of the model's clipped forecast distribution (what simulation estimated before, without
  the sampling noise). For sums over days (weeks, totals) the bounds are the Gaussian
  approximation: the sum of the unclipped days is Gaussian, the sum of clipped days is not
  quite (only for accounts forecast near zero does it matter).
* "cohort" (shorter history, and the caller passes its segment's ramp curve): the run rate
  below scaled by the curve's growth from the account's current month on it. The curve is
  ``forecasting.cohorts``' median normalized revenue by month since the land was signed
  (month 1 = the calendar month of signing), so the caller places the as-of day on it
  (``cohort_day``: days since the first day of month 1; without it, days since first
  usage) and months are counted as 30 days: day h is forecast at rate ×
  curve[month of h] / curve[current month], flat after the curve ends (the caller cuts it
  at the level-off month). The interval is the run-rate interval scaled by the same ratio.
  The account gets the run rate instead when the curve says nothing for it: it ends by the
  current month, or its median there is under ``MIN_CURVE_SHARE`` (a tenth) of the
  curve's highest — a median that has barely started means most of the cohort is not
  consuming yet, and ratios from it are noise (×20 and more on the bench data).
* "run_rate" (shorter history, or no revenue in the last 30 days): the trailing-30-day mean
  (of the days since first usage, up to 30) carried forward; the interval is that mean
  ± 1.28 daily standard deviations (at least a quarter of the mean), widened by √(1 + h/30)
  for drift.
* "none": no revenue at all in the history: zero.

Floats are used inside the model; values become Decimal (2 places, half-up) once, at the
end. Nothing is random, so shards and re-runs agree to the cent.
"""

from __future__ import annotations

import math
import os
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

CENT = Decimal("0.01")
MIN_HISTORY_DAYS = 56
RUN_RATE_DAYS = 30
MONTH_DAYS = 30  # a cohort month (forecasting.cohorts.DAYS_PER_MONTH)
MIN_CURVE_SHARE = 0.1  # the cohort median at the account's month, at least this share of the curve's highest
SEASON = 7
ETS_PARAMS = 13  # α, β, γ, φ, l_0, b_0 and 7 seasons: statsmodels' n_params for this model
Z80 = 1.2816  # the 90th percentile of the standard normal: an 80% two-sided interval


@dataclass(frozen=True)
class Point:
    offset: int  # 1 = the day after as-of
    value: Decimal
    lower: Decimal
    upper: Decimal


@dataclass(frozen=True)
class _Gaussian:
    """The ETS forecast distribution: y_h = mean[h] + σ·Σ_i C[h, i]·z_i with z ~ N(0, 1)."""

    mean: object  # unclipped daily means (numpy, horizon)
    prefix: object  # S[n] = c_0 + … + c_n (numpy, horizon)
    sigma: float

    def bucket_bounds(self, firsts, lasts):
        """Clipped 80% bounds of the sums over days firsts[b] … lasts[b] (0-based, inclusive), all at once.

        The sum's weight on e_i is the sum of C's rows first…last in column i: Σ_{d=max(i, first)}^{last}
        c_{d−i} = S[last − i] − S[first − 1 − i] (S[n] = 0 for n < 0).
        """
        import numpy as np

        padded = np.concatenate(([0.0], self.prefix))  # padded[n + 1] = S[n], padded[0] = S[−1] = 0
        i = np.arange(len(self.prefix))
        weights = padded[np.clip(lasts[:, None] - i + 1, 0, None)] - padded[np.clip(firsts[:, None] - i, 0, None)]
        sd = self.sigma * np.sqrt((weights**2).sum(axis=1))
        cumulative = np.concatenate(([0.0], np.cumsum(self.mean)))
        mean = cumulative[lasts + 1] - cumulative[firsts]
        return np.maximum(mean - Z80 * sd, 0.0), np.maximum(mean + Z80 * sd, 0.0)


@dataclass
class SeriesForecast:
    method: str
    history_days: int
    points: list[Point]
    components: dict = field(default_factory=dict)
    # ETS only: the closed-form distribution behind the intervals; None for the other methods.
    _gaussian: _Gaussian | None = field(default=None, repr=False)

    def weekly(self, start: int) -> list[Point]:
        """Points from offset ``start`` on, summed in 7-day buckets (the last may be shorter)."""
        firsts = list(range(start, len(self.points) + 1, SEASON))
        return self.sums([(first, min(first + SEASON - 1, len(self.points))) for first in firsts])

    def total(self, days: int) -> Point:
        """The sum of the first ``days`` days (offset 1), with the 80% interval of that total."""
        return self.sums([(1, days)])[0]

    def sums(self, spans: Sequence[tuple[int, int]]) -> list[Point]:
        """One point per (first, last) span of offsets (inclusive): the sum of the daily values, with
        the 80% interval of the sum for ETS (narrower than summing daily bounds: errors are not perfectly
        correlated) and the sum of the daily bounds for the other methods (conservative)."""
        chunks = [self.points[first - 1 : last] for first, last in spans]
        values = [sum((p.value for p in chunk), Decimal(0)) for chunk in chunks]
        if self._gaussian is not None and spans:
            import numpy as np

            bounds = np.array(spans) - 1
            lows, highs = self._gaussian.bucket_bounds(bounds[:, 0], bounds[:, 1])
            return [
                Point(first, value, min(low, value), max(high, value))
                for (first, _), value, low, high in zip(spans, values, money_list(lows), money_list(highs), strict=True)
            ]
        return [
            Point(first, value, sum((p.lower for p in chunk), Decimal(0)), sum((p.upper for p in chunk), Decimal(0)))
            for (first, _), value, chunk in zip(spans, values, chunks, strict=True)
        ]


def _cents(x: float) -> int:
    """Whole cents, half-up, floored at zero; 10⁻⁶ cent of slack so that 1.005 (stored as
    1.00499999…) rounds to 1.01 as written."""
    return math.floor(max(0.0, x) * 100 + 0.5 + 1e-6)


def _money(x: float) -> Decimal:
    return Decimal(_cents(float(x))) * CENT


def money_list(values) -> list[Decimal]:
    """``_money`` over a numpy array at once (one numpy pass, then one Decimal per value)."""
    import numpy as np

    cents = np.floor(np.maximum(np.asarray(values, dtype=float), 0.0) * 100 + 0.5 + 1e-6).astype(np.int64)
    return [Decimal(c) * CENT for c in cents.tolist()]


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


def forecast_account_series(
    values: Sequence[Decimal],
    *,
    horizon: int = 365,
    intervals: bool = True,
    cohort_curve: Sequence[Decimal | float] | None = None,
    cohort_day: int | None = None,
) -> SeriesForecast:
    """Forecast ``horizon`` days after the last value; see the module docstring for methods.

    ``cohort_curve``: the account's segment's median monthly trajectory (month 1 first, any
    scale), already cut where it levels off; used only for accounts with short histories.
    ``cohort_day``: where the as-of day falls on that curve, in days since the first day of
    its month 1 (0 = the as-of day is that day); None: days since the account's first usage.
    """
    history = trim_leading_zeros(values)
    naive = run_rate(values)
    components = {"naive_daily": str(naive.quantize(Decimal("0.000001")))}
    if not history:
        zero = Decimal("0.00")
        return SeriesForecast("none", 0, [Point(h, zero, zero, zero) for h in range(1, horizon + 1)], components)
    if len(history) < MIN_HISTORY_DAYS and cohort_curve:
        day = len(history) - 1 if cohort_day is None else cohort_day
        forecast = _cohort_forecast(history, horizon, components, cohort_curve, day)
        if forecast is not None:
            return forecast
    if len(history) < MIN_HISTORY_DAYS or not any(history[-RUN_RATE_DAYS:]):
        return _run_rate_forecast(history, horizon, components)
    return _ets_forecast(history, horizon, components, intervals=intervals)


def _run_rate_stats(history: list[Decimal]) -> tuple[float, float]:
    tail = [float(v) for v in history[-RUN_RATE_DAYS:]]
    mean = sum(tail) / len(tail)
    sd = statistics.pstdev(tail) if len(tail) > 1 else mean
    # Wide on purpose: little history says little about the level, let alone the trend.
    return mean, max(sd, 0.25 * mean)


def _run_rate_forecast(history: list[Decimal], horizon: int, components: dict) -> SeriesForecast:
    mean, sd = _run_rate_stats(history)
    value = _money(mean)
    points = []
    for h in range(1, horizon + 1):
        spread = Z80 * sd * math.sqrt(1 + h / RUN_RATE_DAYS)
        points.append(Point(h, value, _money(mean - spread), _money(mean + spread)))
    components |= {"mean": round(mean, 6), "sd": round(sd, 6)}
    return SeriesForecast("run_rate", len(history), points, components)


def _cohort_forecast(
    history: list[Decimal], horizon: int, components: dict, curve: Sequence[Decimal | float], day: int
) -> SeriesForecast | None:
    """The run rate grown along the cohort curve from ``day`` on it; None when the curve says nothing here."""
    curve = [float(v) for v in curve]
    month = day // MONTH_DAYS  # 0-based month of the as-of day on the curve
    if day < 0 or month + 1 >= len(curve) or curve[month] <= 0 or curve[month] < MIN_CURVE_SHARE * max(curve):
        return None  # the curve ends (or levels off) by this month, or its median has not really started
    mean, sd = _run_rate_stats(history)
    last = len(curve) - 1
    points = []
    for h in range(1, horizon + 1):
        ratio = curve[min((day + h) // MONTH_DAYS, last)] / curve[month]
        centre = mean * ratio
        spread = Z80 * sd * ratio * math.sqrt(1 + h / RUN_RATE_DAYS)
        points.append(Point(h, _money(centre), _money(centre - spread), _money(centre + spread)))
    components |= {
        "mean": round(mean, 6),
        "sd": round(sd, 6),
        "cohort_day": day,
        "cohort_month": month + 1,
        "cohort_curve": [round(v, 4) for v in curve],
    }
    return SeriesForecast("cohort", len(history), points, components)


def ets_distribution(fit, horizon: int) -> _Gaussian:
    """The closed-form forecast distribution of a fitted additive damped Holt-Winters model."""
    import numpy as np

    params = fit.params
    alpha = float(params["smoothing_level"])
    # statsmodels' smoothing_trend is Holt's β* (on the change in level); in the innovations form
    # the trend moves by α·β*·e (b_t = φb_{t−1} + β*(l_t − l_{t−1} − φb_{t−1}), l_t − l_{t−1} − φb_{t−1} = α·e).
    beta = alpha * float(params["smoothing_trend"])
    gamma = float(params["smoothing_seasonal"])
    phi = float(params["damping_trend"])
    resid = np.asarray(fit.model.endog, dtype=float) - np.asarray(fit.fittedvalues)
    sigma = math.sqrt(float(np.sum(resid**2)) / (len(resid) - ETS_PARAMS))

    h = np.arange(1, horizon + 1)
    damped = np.cumsum(phi**h)  # φ + … + φ^h
    season = np.asarray(fit.season)[-SEASON:]
    mean = float(fit.level[-1]) + damped * float(fit.trend[-1]) + season[(h - 1) % SEASON]
    # c_0 = 1, c_j = α + β(φ + … + φ^j) + γ[j mod m = 0] for j = 1 … horizon − 1.
    c = np.empty(horizon)
    c[0] = 1.0
    j = h[:-1]
    c[1:] = alpha + beta * damped[:-1] + gamma * (j % SEASON == 0)
    return _Gaussian(mean=mean, prefix=np.cumsum(c), sigma=sigma)


def daily_bounds(dist: _Gaussian):
    """Clipped 80% bounds per day: mean ± z·σ·√(c_0² + … + c_{h−1}²), at least zero."""
    import numpy as np

    c = np.diff(dist.prefix, prepend=0.0)
    sd = dist.sigma * np.sqrt(np.cumsum(c**2))
    return np.maximum(dist.mean - Z80 * sd, 0.0), np.maximum(dist.mean + Z80 * sd, 0.0)


def fit_ets(history: Sequence[Decimal]):
    """statsmodels' additive damped Holt-Winters fit with weekly seasonality, as the engine uses it."""
    # One BLAS thread unless the environment says otherwise. A fit is a 4-parameter L-BFGS-B
    # optimisation (scipy's goes through BLAS) and shards run one per core: OpenBLAS's worker threads
    # only fight the other shard for the cores. With two shards on 2 cores ETS took 166 ms per account
    # with OpenBLAS's default threads and 58 ms with one (bench.forecast_run). It is read when numpy and
    # scipy load, so it only takes effect if nothing in the process imported them before this.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Imported here: statsmodels and numpy take a second to import and only this job needs them.
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.array([float(v) for v in history])
    with warnings.catch_warnings():
        # Convergence chatter on flat or intermittent series; the fit is still usable.
        warnings.simplefilter("ignore")
        return ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=SEASON,
            # Heuristic start values (from the first cycles) instead of optimising 9 more parameters: 5×
            # faster on the 5,000-account bench with near-identical forecasts.
            initialization_method="heuristic",
        ).fit(use_brute=False)  # the brute-force start grid costs 10× and rarely changes the fit


def _ets_forecast(history: list[Decimal], horizon: int, components: dict, *, intervals: bool) -> SeriesForecast:
    fit = fit_ets(history)
    dist = ets_distribution(fit, horizon)
    values = money_list(dist.mean)
    if intervals:
        lows, highs = daily_bounds(dist)
        lowers, uppers = money_list(lows), money_list(highs)
    else:
        lowers = uppers = values
    points = [Point(h + 1, values[h], lowers[h], uppers[h]) for h in range(horizon)]
    params = fit.params
    components |= {
        "alpha": round(float(params["smoothing_level"]), 6),
        "beta": round(float(params["smoothing_trend"]), 6),
        "gamma": round(float(params["smoothing_seasonal"]), 6),
        "phi": round(float(params["damping_trend"]), 6),
        "level": round(float(fit.level[-1]), 6),
        "trend": round(float(fit.trend[-1]), 6),
        "seasonal": [round(float(s), 6) for s in fit.season[-SEASON:]],
        "sigma": round(dist.sigma, 6),
    }
    return SeriesForecast("ets", len(history), points, components, dist if intervals else None)
