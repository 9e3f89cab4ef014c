"""The forecast engine on synthetic series whose future is known."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from forecasting import engine
from forecasting.engine import forecast_account_series, run_rate
from tests.forecasting.synthetic import WEEKLY, series


def test_a_linear_trend_with_a_weekly_pattern_is_forecast_within_three_percent():
    # 100 + 0.5/day with a weekly pattern and noise sd 3, 300 days of history.
    full = series(330, level=100, slope=0.5, noise=3, seed=1)
    result = forecast_account_series(full[:300], horizon=30)

    assert result.method == "ets"
    forecast = sum(p.value for p in result.points)
    # Σ(100 + 0.5t) for t = 300…329 = 3,000 + 0.5 × 9,435 = 7,717.5; the weekly pattern sums to 0 over
    # four weeks, leaving t = 328 (Sun, −18) and 329 (Mon, 0): truth = 7,699.5.
    truth = sum(Decimal(100 + 0.5 * t + WEEKLY[t % 7]) for t in range(300, 330))
    assert truth == Decimal("7699.5")
    assert abs(forecast - truth) / truth < Decimal("0.03")
    # The weekly shape survives: Sunday (t % 7 == 6) is forecast below Wednesday (t % 7 == 2).
    by_offset = {p.offset: p.value for p in result.points}
    sunday = next(h for h in range(1, 8) if (299 + h) % 7 == 6)
    wednesday = next(h for h in range(1, 8) if (299 + h) % 7 == 2)
    assert by_offset[sunday] + 20 < by_offset[wednesday]


def test_a_step_change_is_followed():
    # 120 days at 100, then 40 days at 200: the next fortnight is forecast near 200, not the old mean.
    history = series(120, level=100, noise=2, seed=2) + series(40, level=200, noise=2, seed=3, start_weekday=120 % 7)
    result = forecast_account_series(history, horizon=14)

    mean = sum(p.value for p in result.points) / 14
    assert Decimal(185) < mean < Decimal(215)


def test_eighty_percent_intervals_cover_seventy_to_ninety_percent_of_outcomes():
    # 40 series with noise sd 10 around a flat-ish level: share of the next 30 days inside [lower, upper].
    inside = total = 0
    for seed in range(40):
        rng = random.Random(seed)
        full = series(210, level=rng.uniform(150, 300), slope=rng.uniform(-0.1, 0.2), noise=10, seed=seed)
        result = forecast_account_series(full[:180], horizon=30)
        for p, actual in zip(result.points, full[180:], strict=True):
            inside += p.lower <= actual <= p.upper
            total += 1
    coverage = inside / total
    assert 0.70 <= coverage <= 0.90, coverage


def test_intervals_are_ordered_and_never_negative():
    result = forecast_account_series(series(120, level=5, noise=4, seed=4), horizon=365)

    assert len(result.points) == 365
    assert all(Decimal(0) <= p.lower <= p.value <= p.upper for p in result.points)
    weeks = result.weekly(91)
    assert len(weeks) == 40 and weeks[0].offset == 91 and weeks[-1].offset == 364


def test_under_eight_weeks_of_history_falls_back_to_the_run_rate():
    # 20 days of nothing, then 40 days at 50 (leading zeros are not history): mean of last 30 = 50.
    result = forecast_account_series([Decimal(0)] * 20 + [Decimal(50)] * 40, horizon=10)

    assert result.method == "run_rate"
    assert result.history_days == 40
    assert [p.value for p in result.points] == [Decimal("50.00")] * 10
    assert result.points[0].lower < Decimal(50) < result.points[0].upper
    assert result.points[9].upper - result.points[9].lower > result.points[0].upper - result.points[0].lower


def test_no_revenue_forecasts_zero():
    result = forecast_account_series([Decimal(0)] * 100, horizon=5)

    assert result.method == "none"
    assert all(p.value == p.lower == p.upper == 0 for p in result.points)


def test_the_forecast_is_deterministic():
    history = series(200, level=80, slope=0.1, noise=6, seed=5)

    assert forecast_account_series(history).points == forecast_account_series(history).points


def test_the_naive_run_rate_is_the_trailing_thirty_day_mean():
    # 10 days at 0 then 20 days at 30 in the last 30: 600 / 30 = 20.
    assert run_rate([Decimal(99)] * 5 + [Decimal(0)] * 10 + [Decimal(30)] * 20) == Decimal(20)


# --- The closed-form prediction distribution (ETS) -----------------------------------------


def _fixed_fit(history, *, alpha=0.4, beta=0.15, gamma=0.3, phi=0.9):
    """A Holt-Winters fit with chosen parameters, so that β, γ and φ all matter."""
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.array([float(v) for v in history])
    model = ExponentialSmoothing(
        y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=7, initialization_method="heuristic"
    )
    return model.fit(
        smoothing_level=alpha, smoothing_trend=beta, smoothing_seasonal=gamma, damping_trend=phi, optimized=False
    )


def test_the_closed_form_mean_is_statsmodels_forecast():
    import numpy as np

    history = series(200, level=120, slope=0.3, noise=8, seed=11)
    h = np.arange(1, 366)
    for fit in (engine.fit_ets(history), _fixed_fit(history)):
        dist = engine.ets_distribution(fit, 365)
        forecast = np.asarray(fit.forecast(365))
        cycle = h % 7 == 0
        np.testing.assert_allclose(dist.mean[~cycle], forecast[~cycle], rtol=1e-10, atol=1e-8)
        # At h = 7, 14, … statsmodels 0.14 forecasts with the season one cycle older, s_{T−7}, instead of the
        # last one, s_T (statsmodels#9538, fixed by #10230). The engine uses s_T, as simulate() does.
        season = np.asarray(fit.season)
        fixed = np.allclose(dist.mean[cycle], forecast[cycle], rtol=1e-10, atol=1e-8)
        issue_9538 = np.allclose(dist.mean[cycle], forecast[cycle] + season[-1] - season[-8], rtol=1e-10, atol=1e-8)
        assert fixed or issue_9538
        assert abs(season[-1] - season[-8]) > 1e-6  # the two differ here, so the check above means something

    # The engine's points are that mean, clipped at zero and rounded to the cent.
    result = forecast_account_series(history, horizon=365)
    mean = engine.ets_distribution(engine.fit_ets(history), 365).mean
    assert [p.value for p in result.points] == [engine._money(v) for v in mean]


def _simulated_bounds(fit, horizon: int, *, weekly_from: int | None = None):
    """Percentiles of 20,000 futures run through the fitted model's own Holt-Winters recursions
    (the updates statsmodels fits with), Gaussian errors of the engine's σ."""
    import numpy as np

    params = fit.params
    alpha, beta, gamma, phi = (
        float(params[k]) for k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")
    )
    sigma = engine.ets_distribution(fit, 1).sigma
    reps = 20_000
    rng = np.random.default_rng(3)
    level = np.full(reps, float(fit.level[-1]))
    trend = np.full(reps, float(fit.trend[-1]))
    seasons = [np.full(reps, float(v)) for v in np.asarray(fit.season)[-7:]]
    paths = np.empty((horizon, reps))
    for t in range(horizon):
        season = seasons[t % 7]
        y = level + phi * trend + season + rng.standard_normal(reps) * sigma
        new_level = alpha * (y - season) + (1 - alpha) * (level + phi * trend)
        seasons[t % 7] = gamma * (y - level - phi * trend) + (1 - gamma) * season
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
        paths[t] = y
    mean = paths.mean(axis=1)  # before clipping: the model's mean
    paths = np.clip(paths, 0, None)
    if weekly_from is not None:
        sums = [paths[first : first + 7].sum(axis=0) for first in range(weekly_from - 1, horizon, 7)]
        paths = np.array(sums)
    low, high = np.percentile(paths, [10, 90], axis=1)
    return low, high, mean


def test_the_closed_form_daily_and_weekly_bounds_agree_with_simulating_the_fitted_recursions():
    import numpy as np

    history = series(150, level=200, slope=0.2, noise=15, seed=12)
    horizon = 70
    for fit in (engine.fit_ets(history), _fixed_fit(history)):
        dist = engine.ets_distribution(fit, horizon)
        low, high = engine.daily_bounds(dist)
        sim_low, sim_high, sim_mean = _simulated_bounds(fit, horizon)
        # The simulated mean is the closed-form mean (within 5 standard errors of 20,000 paths).
        assert np.all(np.abs(sim_mean - dist.mean) < 5 * (high - low) / (2 * engine.Z80) / np.sqrt(20_000))
        width = sim_high - sim_low
        # 20,000 paths: a simulated decile is within ~0.5% of the interval's width; allow 3%.
        assert np.all(np.abs(low - sim_low) < 0.03 * width)
        assert np.all(np.abs(high - sim_high) < 0.03 * width)
        assert np.all(np.abs(high - sim_high) / sim_high < 0.01)

        # Weekly sums from day 8 (buckets 8–14 … 64–70): the row sums of C.
        starts = np.arange(7, horizon, 7)
        week_low, week_high = dist.bucket_bounds(starts, starts + 6)
        sim_low, sim_high, _ = _simulated_bounds(fit, horizon, weekly_from=8)
        width = sim_high - sim_low
        assert np.all(np.abs(week_low - sim_low) < 0.03 * width)
        assert np.all(np.abs(week_high - sim_high) < 0.03 * width)
        # The intervals widen with the horizon.
        assert (high - low)[-1] > (high - low)[0]


def test_weekly_bounds_are_the_bucket_bounds_in_money():
    history = series(150, level=200, slope=0.2, noise=15, seed=12)
    result = forecast_account_series(history, horizon=365)

    weeks = result.weekly(91)
    assert len(weeks) == 40 and weeks[-1].offset == 364
    dist = engine.ets_distribution(engine.fit_ets(history), 365)
    import numpy as np

    starts = np.arange(90, 365, 7)
    low, high = dist.bucket_bounds(starts, np.minimum(starts + 7, 365) - 1)
    assert [w.lower for w in weeks] == [min(engine._money(v), w.value) for v, w in zip(low, weeks, strict=True)]
    assert [w.upper for w in weeks] == [max(engine._money(v), w.value) for v, w in zip(high, weeks, strict=True)]
    # A week's interval is narrower than the sum of its daily intervals (errors are not perfectly correlated).
    first = weeks[0]
    daily = result.points[90:97]
    assert first.upper - first.lower < sum(p.upper - p.lower for p in daily)


def test_money_rounds_half_up_to_the_cent_and_floors_at_zero():
    assert engine._money(1.005) == Decimal("1.01")
    assert engine._money(2.675) == Decimal("2.68")
    assert engine._money(12.344999) == Decimal("12.34")
    assert engine._money(-3.2) == Decimal("0.00")
    assert str(engine._money(50)) == "50.00"
    assert engine.money_list([1.005, 0.004, 7]) == [Decimal("1.01"), Decimal("0.00"), Decimal("7.00")]


# --- Cohort fallback -------------------------------------------------------------------------


def test_a_young_account_grows_along_its_cohort_curve():
    # 21 days at 100 (month 1 since first usage); the cohort doubles from month 1 to month 3, then levels off.
    young = [Decimal(0)] * 100 + [Decimal(100)] * 21
    curve = [Decimal("0.5"), Decimal("0.75"), Decimal("1.0")]
    result = forecast_account_series(young, horizon=365, cohort_curve=curve)

    assert result.method == "cohort"
    assert result.components["cohort_month"] == 1
    value = {p.offset: p.value for p in result.points}
    # Days 22–30 are month 1, days 31–60 month 2 (h = 10…39), then month 3 and flat after the curve ends.
    assert value[1] == value[9] == Decimal("100.00")
    assert value[10] == value[39] == Decimal("150.00")
    assert value[40] == value[365] == Decimal("200.00")
    # The interval is the run rate's, scaled along: same relative width at the same horizon.
    p1 = result.points[0]
    run = forecast_account_series(young, horizon=365)
    assert (p1.lower, p1.upper) == (run.points[0].lower, run.points[0].upper)
    p40, r40 = result.points[39], run.points[39]
    assert p40.upper - p40.lower == pytest.approx(2 * (r40.upper - r40.lower), abs=Decimal("0.02"))

    # Without cohort data the same account gets the flat run rate.
    assert run.method == "run_rate"
    assert {p.value for p in run.points} == {Decimal("100.00")}

    # Placed on the curve by its land instead (signed 29 days before as-of: tomorrow is month 2).
    placed = forecast_account_series(young, horizon=365, cohort_curve=curve, cohort_day=29)
    assert [placed.points[h - 1].value for h in (1, 30, 31, 365)] == [150, 150, 200, 200]
    assert placed.components["cohort_day"] == 29


def test_the_cohort_curve_only_applies_where_it_says_something():
    young = [Decimal(100)] * 40  # month 2 since first usage
    assert forecast_account_series(young, horizon=30, cohort_curve=[1, 2]).method == "run_rate"  # ends at month 2
    assert forecast_account_series(young, horizon=30, cohort_curve=[1, 0, 3]).method == "run_rate"  # zero at month 2
    assert forecast_account_series(young, horizon=30, cohort_curve=[1, 1.5, 3]).method == "cohort"
    assert forecast_account_series(young, horizon=30, cohort_curve=[]).method == "run_rate"
    # A median that has barely started (under a tenth of the curve's highest) says nothing reliable.
    assert forecast_account_series(young, horizon=30, cohort_curve=[0, 0.05, 0.6, 1]).method == "run_rate"
    assert forecast_account_series(young, horizon=30, cohort_curve=[0, 0.1, 0.6, 1]).method == "cohort"
    # Placed past the curve's end by its land: nothing left to grow along.
    assert forecast_account_series(young, horizon=30, cohort_curve=[1, 1.5, 3], cohort_day=60).method == "run_rate"
    # Eight weeks of history or more: the account's own series wins.
    grown = series(120, level=100, noise=3, seed=6)
    assert forecast_account_series(grown, horizon=30, cohort_curve=[1, 2, 3, 4, 5, 6]).method == "ets"


def test_a_horizon_total_has_the_interval_of_the_sum():
    import numpy as np

    history = series(150, level=200, slope=0.2, noise=15, seed=12)
    result = forecast_account_series(history, horizon=365)
    total = result.total(90)

    assert total.value == sum(p.value for p in result.points[:90])
    low, high = engine.ets_distribution(engine.fit_ets(history), 365).bucket_bounds(np.array([0]), np.array([89]))
    assert (total.lower, total.upper) == (engine._money(low[0]), engine._money(high[0]))
    assert total.lower < total.value < total.upper
    assert total.upper - total.lower < sum(p.upper - p.lower for p in result.points[:90])
    # Closed-form methods without a joint distribution: the sum of the daily bounds.
    young = forecast_account_series([Decimal(100)] * 20, horizon=30)
    assert young.total(30) == engine.Point(
        1, Decimal("3000.00"), sum(p.lower for p in young.points), sum(p.upper for p in young.points)
    )
