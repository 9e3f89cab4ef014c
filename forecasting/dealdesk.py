"""Deal desk estimate for a planned contract from similar accounts (docs/metrics.md#forecast-deal-desk).

Pure functions over ``cohorts.land_trajectories``. Rules:

* **Similar**: same segment; land committed ARR within ×0.5–×2 of the planned one; at
  least 12 complete months since signing (a first year to compare). Same industry is
  preferred: when at least ``MIN_SIMILAR`` (5) such accounts share the industry they are
  the basis; otherwise the basis widens to the segment (still within the size band), and
  the result says so.
* **First-year consumption** of an account = its revenue in months 1–12 since signing,
  scaled to the planned contract: × planned ARR ÷ the account's land ARR.
* **Estimate** = median of the scaled first years; **range** = their 25th–75th
  percentiles (linear interpolation between ranks, as numpy's default).
* **TTFBE** = median days from each similar account's land contract start to its first
  revenue day (accounts without revenue yet are left out of this median).
* **Suggested ramp** = the segment's ramp window from its cohorts (``cohorts.suggest_ramp``:
  the default 90 days with fewer than 10 lands, never longer than the contract's term).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import Segment
from forecasting.cohorts import LandTrajectory, RampSuggestion, segment_ramps, suggest_ramp

MIN_SIMILAR = 5
FIRST_YEAR_MONTHS = 12
SIZE_LOW = Decimal("0.5")
SIZE_HIGH = Decimal("2")
CENT = Decimal("0.01")

BASIS_INDUSTRY = "segment and industry"
BASIS_SEGMENT = "segment only"


@dataclass(frozen=True)
class Similar:
    trajectory: LandTrajectory
    first_year: Decimal  # months 1–12 as consumed
    scaled: Decimal  # × planned ARR ÷ its ARR


@dataclass(frozen=True)
class Estimate:
    segment: str
    industry: str
    committed_arr: Decimal
    basis: str  # BASIS_INDUSTRY or BASIS_SEGMENT
    similar: list[Similar]
    expected: Decimal | None
    low: Decimal | None  # 25th percentile
    high: Decimal | None  # 75th percentile
    median_ttfbe_days: Decimal | None

    @property
    def count(self) -> int:
        return len(self.similar)

    @property
    def enough(self) -> bool:
        return self.count >= MIN_SIMILAR


def percentile(values: Sequence[Decimal], fraction: Decimal) -> Decimal:
    """Linear interpolation between the closest ranks (rank = fraction × (n − 1))."""
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    if low + 1 >= len(ordered):
        return ordered[-1]
    return ordered[low] + (ordered[low + 1] - ordered[low]) * (rank - low)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def deal_desk_estimate(
    trajectories: Sequence[LandTrajectory],
    *,
    segment: str,
    industry: str,
    committed_arr: Decimal,
    min_similar: int = MIN_SIMILAR,
) -> Estimate:
    """The expected first-year consumption of a planned contract, from similar lands."""
    in_band = [
        t
        for t in trajectories
        if t.segment == segment
        and len(t.monthly) >= FIRST_YEAR_MONTHS
        and committed_arr * SIZE_LOW <= t.committed_arr <= committed_arr * SIZE_HIGH
    ]
    same_industry = [t for t in in_band if industry and t.industry.lower() == industry.lower()]
    basis, chosen = (BASIS_INDUSTRY, same_industry) if len(same_industry) >= min_similar else (BASIS_SEGMENT, in_band)
    similar = []
    for t in chosen:
        first_year = sum(t.monthly[:FIRST_YEAR_MONTHS], Decimal(0))
        similar.append(Similar(t, _money(first_year), _money(first_year * committed_arr / t.committed_arr)))
    similar.sort(key=lambda s: (s.scaled, s.trajectory.account_id))
    scaled = [s.scaled for s in similar]
    ttfbe = [s.trajectory.ttfbe_days for s in similar if s.trajectory.ttfbe_days is not None]
    return Estimate(
        segment=segment,
        industry=industry,
        committed_arr=committed_arr,
        basis=basis,
        similar=similar,
        expected=_money(Decimal(statistics.median(scaled))) if scaled else None,
        low=_money(percentile(scaled, Decimal("0.25"))) if scaled else None,
        high=_money(percentile(scaled, Decimal("0.75"))) if scaled else None,
        median_ttfbe_days=Decimal(str(statistics.median(ttfbe))) if ttfbe else None,
    )


@dataclass(frozen=True)
class Plan:
    """What the deal desk page shows for a planned contract: the estimate and the ramp to suggest."""

    estimate: Estimate
    ramp: RampSuggestion


def deal_desk_plan(
    trajectories: Sequence[LandTrajectory],
    *,
    segment: str,
    industry: str,
    committed_arr: Decimal,
    term_days: int,
) -> Plan:
    """The estimate for a planned contract and the ramp window to suggest for its term."""
    estimate = deal_desk_estimate(trajectories, segment=segment, industry=industry, committed_arr=committed_arr)
    ramp = segment_ramps([t for t in trajectories if t.segment == segment]).get(segment)
    label = dict(Segment.choices).get(segment, segment)
    return Plan(estimate, suggest_ramp(ramp, segment_label=label, term_days=term_days))
