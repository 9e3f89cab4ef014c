"""The forecast engine on synthetic series whose future is known."""

from __future__ import annotations

import random
from decimal import Decimal

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
