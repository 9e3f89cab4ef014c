"""Synthetic daily revenue series with a known shape."""

from __future__ import annotations

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
