"""Cohort ramp analysis (docs/metrics.md#forecast-cohorts).

One SQL read (``land_trajectories``) gives each account's consumed revenue by month since
its first purchase; pure functions turn those into normalized trajectories, cohort
medians and the level-off month. The deal desk estimate reads the same trajectories.

Rules, chosen here and shown on the page:

* **Land** is an account's first signed contract(s): the earliest ``signed_on``; its
  committed ARR is the sum over contracts signed that day. An account's own rollups
  count (a division is its own account), as in the portfolio totals.
* **Month 1** is the calendar month of signing, month k the (k−1)th after it, up to 18.
  Only complete months (ending on or before the as-of day) count.
* An account is left out when usage history (the first rollup day anywhere) starts after
  the first day of its signing month: its early months would read as zero, not as ramp.
  Also left out: a land with no committed ARR (nothing to normalize by).
* **Normalized** month revenue = month revenue ÷ (land committed ARR ÷ 12): 1.0 means
  consuming exactly the commitment's monthly share.
* A **cohort** is (segment, quarter of signing). Its median trajectory has, for each
  month, the median over the accounts that have that month, and stops at the first
  month with fewer than ``MIN_ACCOUNTS`` accounts (a median of one or two is noise).
* The **level-off month** is the first month m whose median grows by less than
  ``LEVEL_OFF_GROWTH`` (5%) month over month for each of the next ``LEVEL_OFF_HOLD`` (2)
  months: growth(m→m+1) and growth(m+1→m+2) both below it. A zero median has not started
  ramping, so it never levels off. No such m (yet) → None.
* The **ramp window** is the level-off month × 30 days; ``suggested_ramp_days`` pools a
  segment's cohorts into one median trajectory.
* The **suggested ramp** for a contract (``suggest_ramp``) is that window when at least
  ``MIN_RAMP_ACCOUNTS`` (10) lands of the segment stand behind it, else the default
  ``DEFAULT_RAMP_DAYS`` (90); either way never longer than the contract's term (a window
  past the term would keep the land AE accountable after the contract ended). It says why.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

MAX_MONTHS = 18
MIN_ACCOUNTS = 3
LEVEL_OFF_GROWTH = Decimal("0.05")
LEVEL_OFF_HOLD = 2
DAYS_PER_MONTH = 30
RATIO = Decimal("0.0001")
DEFAULT_RAMP_DAYS = 90  # a contract's ramp window when the cohorts cannot suggest one
MIN_RAMP_ACCOUNTS = 10  # lands a segment needs before its level-off month is suggested
DEFAULT_TERM_DAYS = 365  # the term assumed when no contract is given


@dataclass(frozen=True)
class LandTrajectory:
    """One account's land and its consumed revenue per month since signing (month 1 first)."""

    account_id: int
    name: str
    segment: str
    industry: str
    signed_on: dt.date
    start_on: dt.date
    committed_arr: Decimal
    monthly: list[Decimal] = field(default_factory=list)
    first_revenue_on: dt.date | None = None

    @property
    def quarter(self) -> str:
        return f"{self.signed_on.year}-Q{(self.signed_on.month - 1) // 3 + 1}"

    @property
    def normalized(self) -> list[Decimal]:
        return normalize(self.monthly, self.committed_arr)

    @property
    def ttfbe_days(self) -> int | None:
        """Days from the land contract's start to the first revenue day (0 if usage came first)."""
        if self.first_revenue_on is None:
            return None
        return max(0, (self.first_revenue_on - self.start_on).days)


LAND_SQL = """
WITH land AS (
    SELECT account_id, MIN(signed_on) AS signed_on FROM accounts_contract GROUP BY account_id
),
land_terms AS (
    SELECT l.account_id, l.signed_on, MIN(c.start_on) AS start_on, SUM(c.committed_arr) AS committed_arr
    FROM land l JOIN accounts_contract c ON c.account_id = l.account_id AND c.signed_on = l.signed_on
    GROUP BY l.account_id, l.signed_on
),
history AS (SELECT MIN(day) AS first_day FROM usage_dailyrollup),
eligible AS MATERIALIZED (
    SELECT lt.account_id, a.name, a.segment, a.industry, lt.signed_on, lt.start_on, lt.committed_arr,
           date_trunc('month', lt.signed_on)::date AS month_one
    FROM land_terms lt JOIN accounts_account a ON a.id = lt.account_id CROSS JOIN history h
    WHERE lt.committed_arr > 0
      AND lt.signed_on <= %(as_of)s
      AND h.first_day <= date_trunc('month', lt.signed_on)::date
      AND (%(segment)s = '' OR a.segment = %(segment)s)
),
months AS (
    SELECT e.account_id, g.k, (e.month_one + make_interval(months => g.k - 1))::date AS month_start
    FROM eligible e CROSS JOIN generate_series(1, %(max_months)s) AS g(k)
    WHERE (e.month_one + make_interval(months => g.k))::date - 1 <= %(as_of)s
),
monthly AS (
    SELECT m.account_id, m.k, COALESCE(SUM(r.revenue), 0) AS revenue
    FROM months m
    LEFT JOIN usage_dailyrollup r ON r.account_id = m.account_id
        AND r.day >= m.month_start AND r.day < (m.month_start + interval '1 month')::date
    GROUP BY m.account_id, m.k
),
first_revenue AS (
    SELECT r.account_id, MIN(r.day) AS first_day
    FROM usage_dailyrollup r JOIN eligible e ON e.account_id = r.account_id
    WHERE r.revenue > 0 AND r.day <= %(as_of)s
    GROUP BY r.account_id
)
SELECT e.account_id, e.name, e.segment, e.industry, e.signed_on, e.start_on, e.committed_arr, f.first_day,
       COALESCE(array_agg(mo.revenue ORDER BY mo.k) FILTER (WHERE mo.k IS NOT NULL), '{}') AS monthly
FROM eligible e
LEFT JOIN monthly mo ON mo.account_id = e.account_id
LEFT JOIN first_revenue f ON f.account_id = e.account_id
GROUP BY e.account_id, e.name, e.segment, e.industry, e.signed_on, e.start_on, e.committed_arr, f.first_day
ORDER BY e.segment, e.signed_on, e.account_id
"""


def land_trajectories(*, as_of: dt.date, segment: str = "", max_months: int = MAX_MONTHS) -> list[LandTrajectory]:
    """Every eligible account's land and monthly revenue since signing, as of ``as_of`` (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(LAND_SQL, {"as_of": as_of, "segment": segment, "max_months": max_months})
        rows = cursor.fetchall()
    return [
        LandTrajectory(
            account_id=account_id,
            name=name,
            segment=seg,
            industry=industry,
            signed_on=signed_on,
            start_on=start_on,
            committed_arr=committed_arr,
            first_revenue_on=first_day,
            monthly=[Decimal(v) for v in monthly],
        )
        for account_id, name, seg, industry, signed_on, start_on, committed_arr, first_day, monthly in rows
    ]


# --- Pure functions -----------------------------------------------------------------------


def normalize(monthly: Sequence[Decimal], committed_arr: Decimal) -> list[Decimal]:
    """Month revenue ÷ (committed ARR ÷ 12), to 4 places; empty without a commitment."""
    if committed_arr <= 0:
        return []
    share = committed_arr / 12
    return [(Decimal(v) / share).quantize(RATIO, rounding=ROUND_HALF_UP) for v in monthly]


def median_trajectory(trajectories: Sequence[Sequence[Decimal]], *, min_accounts: int = MIN_ACCOUNTS) -> list[Decimal]:
    """Per month, the median over the trajectories that reach it; stops at the first month
    fewer than ``min_accounts`` reach."""
    medians: list[Decimal] = []
    for k in range(max((len(t) for t in trajectories), default=0)):
        values = [t[k] for t in trajectories if len(t) > k]
        if len(values) < min_accounts:
            break
        medians.append(Decimal(statistics.median(values)).quantize(RATIO, rounding=ROUND_HALF_UP))
    return medians


def growth(previous: Decimal, current: Decimal) -> Decimal | None:
    """Month-over-month growth; None when the previous month is zero (not started)."""
    if previous <= 0:
        return None
    return current / previous - 1


def level_off_month(
    medians: Sequence[Decimal], *, threshold: Decimal = LEVEL_OFF_GROWTH, hold: int = LEVEL_OFF_HOLD
) -> int | None:
    """The first month m (1-based) whose growth into each of the next ``hold`` months is
    below ``threshold``; None when the trajectory has not levelled off (or is too short)."""
    for m in range(1, len(medians) - hold + 1):
        steps = [growth(medians[i - 1], medians[i]) for i in range(m, m + hold)]
        if all(g is not None and g < threshold for g in steps):
            return m
    return None


def ramp_days(month: int | None) -> int | None:
    return None if month is None else month * DAYS_PER_MONTH


@dataclass(frozen=True)
class Cohort:
    segment: str
    label: str  # "2025-Q3", or "All" for a segment's pooled cohorts
    accounts: int
    median: list[Decimal]
    level_off: int | None

    @property
    def ramp_days(self) -> int | None:
        return ramp_days(self.level_off)


def _cohort(segment: str, label: str, members: Sequence[LandTrajectory], min_accounts: int) -> Cohort:
    median = median_trajectory([m.normalized for m in members], min_accounts=min_accounts)
    return Cohort(segment=segment, label=label, accounts=len(members), median=median, level_off=level_off_month(median))


def cohorts(trajectories: Sequence[LandTrajectory], *, min_accounts: int = MIN_ACCOUNTS) -> list[Cohort]:
    """One cohort per (segment, signing quarter), in segment then quarter order."""
    groups: dict[tuple[str, str], list[LandTrajectory]] = {}
    for t in trajectories:
        groups.setdefault((t.segment, t.quarter), []).append(t)
    return [_cohort(seg, quarter, members, min_accounts) for (seg, quarter), members in sorted(groups.items())]


def segment_ramps(trajectories: Sequence[LandTrajectory], *, min_accounts: int = MIN_ACCOUNTS) -> dict[str, Cohort]:
    """Each segment's cohorts pooled into one median trajectory and its level-off month."""
    groups: dict[str, list[LandTrajectory]] = {}
    for t in trajectories:
        groups.setdefault(t.segment, []).append(t)
    return {seg: _cohort(seg, "All", members, min_accounts) for seg, members in sorted(groups.items())}


def suggested_ramp_days(segment: str, *, as_of: dt.date) -> int | None:
    """The ramp window (days) for ``segment`` from its pooled cohorts; None if not levelled off."""
    ramp = segment_ramps(land_trajectories(as_of=as_of, segment=segment)).get(segment)
    return ramp.ramp_days if ramp else None


@dataclass(frozen=True)
class RampSuggestion:
    days: int
    reason: str  # one sentence fragment, shown beside the number
    from_cohorts: bool  # False: the default (too few lands, or no level-off yet)


def suggest_ramp(
    ramp: Cohort | None,
    *,
    segment_label: str,
    term_days: int,
    min_accounts: int = MIN_RAMP_ACCOUNTS,
    default_days: int = DEFAULT_RAMP_DAYS,
) -> RampSuggestion:
    """The ramp window to suggest for a contract of ``term_days`` in a segment whose pooled
    cohorts are ``ramp`` (None: no lands with history), and why."""
    lands = ramp.accounts if ramp else 0
    similar = f"based on {lands} similar account{'s' if lands != 1 else ''} ({segment_label} lands)"
    if lands < min_accounts:
        days, from_cohorts = default_days, False
        reason = f"{similar}; fewer than {min_accounts}, so the segment default {default_days} days is used"
    elif ramp.ramp_days is None:
        days, from_cohorts = default_days, False
        reason = (
            f"{similar}; their cohorts have not levelled off yet, so the segment default {default_days} days is used"
        )
    else:
        days, from_cohorts = ramp.ramp_days, True
        reason = f"{similar}, whose consumption levels off in month {ramp.level_off}"
    if days > term_days:
        reason += f"; the {days} days would outlast the contract's {term_days}-day term, so the term is used"
        days = term_days
    return RampSuggestion(days=days, reason=reason, from_cohorts=from_cohorts)
