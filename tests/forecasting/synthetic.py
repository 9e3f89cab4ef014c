"""Synthetic daily revenue series with a known shape."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

WEEKLY = [0, 8, 12, 8, 4, -14, -18]  # by t % 7; sums to 0


def series(
    days: int,
    *,
    level: float = 100,
    slope: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    weekly=WEEKLY,
    start_weekday: int = 0,
) -> list[Decimal]:
    """level + slope·t + a weekly pattern + Gaussian noise, floored at 0, in cents."""
    rng = random.Random(seed)
    out = []
    for t in range(days):
        value = level + slope * t + weekly[(start_weekday + t) % 7] + (rng.gauss(0, noise) if noise else 0)
        out.append(Decimal(str(round(max(value, 0.0), 2))))
    return out


WORLD_AS_OF = dt.date(2026, 11, 20)  # the snapshots' day in the ``world`` fixture


def flat_forecast(account, *, daily: str, half_width: str, as_of: dt.date = WORLD_AS_OF):
    """A snapshot with a flat daily forecast and an interval of ± half_width a day (3 daily
    points stored); each horizon's total interval is ± half_width × √days (as for independent days)."""
    from forecasting import rollups
    from forecasting.models import AccountForecast, ForecastPoint

    value, half = Decimal(daily), Decimal(half_width)
    totals = {}
    for h in rollups.HORIZONS:
        spread = (half * Decimal(h).sqrt()).quantize(Decimal("0.01"))
        totals |= {f"next_{h}": value * h, f"next_{h}_lower": value * h - spread, f"next_{h}_upper": value * h + spread}
    forecast = AccountForecast.objects.create(
        account=account, as_of=as_of, method="ets", history_days=365, naive_daily=value, **totals
    )
    ForecastPoint.objects.bulk_create(
        ForecastPoint(
            forecast=forecast,
            day=as_of + dt.timedelta(days=k),
            days=1,
            value=value,
            lower=value - half,
            upper=value + half,
        )
        for k in range(1, 4)
    )
    return forecast
