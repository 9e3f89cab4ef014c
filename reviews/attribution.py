"""Did a product release drive billable usage? The agreed answer for the monthly review.

Method (stated on the page and stored with the result, see ``method_text``): adopters
vs non-adopters, before vs after the release, difference in differences.

* The release's meters are ``release.meters`` plus every meter whose ``feature`` is in
  ``release.features``.
* Adopters: accounts whose first use (a rollup with quantity > 0) of any of those meters
  falls in the post window ``[released_on, released_on + W)``.
* Non-adopters: accounts that had not used them by the end of the post window.
* Both groups need usage in the pre window ``[released_on − W, released_on)``: without a
  "before" a new account's growth is onboarding, not the release. Accounts that used the
  release's meters before it are excluded (they are neither group).
* Outcome: each account's own revenue over all meters (billable usage, not rolled up the
  hierarchy), mean per day in each window, a day without rollups counting as $0.
* Estimate: mean change of adopters − mean change of non-adopters, $/day per account;
  90% confidence interval from Welch's standard error with a t quantile at the
  Welch–Satterthwaite degrees of freedom.

``release_attribution`` runs three queries whatever the number of accounts (the meters,
one statement for every account's windows, one for the daily series); the statistics are
pure functions over Decimals so tests can work them out by hand.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Q

from accounts.models import Segment
from usage.models import Meter, ProductRelease

DEFAULT_WINDOW_DAYS = 28
MIN_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 90
# Below this many accounts in either group there is no estimate, only the group means.
MIN_GROUP = 5
CONFIDENCE = Decimal("0.90")
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
ZERO = Decimal(0)


# --- Results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountChange:
    """One account's mean daily revenue before and after the release."""

    account_id: int
    external_id: str
    name: str
    segment: str
    first_used_on: dt.date | None  # first use of the release's meters (adopters only)
    pre_mean: Decimal
    post_mean: Decimal

    @property
    def change(self) -> Decimal:
        return self.post_mean - self.pre_mean


@dataclass(frozen=True)
class Group:
    """Adopters or non-adopters: the accounts and their means (None when empty)."""

    accounts: tuple[AccountChange, ...]

    @property
    def n(self) -> int:
        return len(self.accounts)

    @property
    def pre_mean(self) -> Decimal | None:
        return statistics.mean(a.pre_mean for a in self.accounts) if self.accounts else None

    @property
    def post_mean(self) -> Decimal | None:
        return statistics.mean(a.post_mean for a in self.accounts) if self.accounts else None

    @property
    def mean_change(self) -> Decimal | None:
        return statistics.mean(self.changes) if self.accounts else None

    @property
    def changes(self) -> list[Decimal]:
        return [a.change for a in self.accounts]


@dataclass(frozen=True)
class Interval:
    """A difference of two means with its Welch confidence interval."""

    estimate: Decimal
    standard_error: Decimal
    degrees_of_freedom: Decimal | None  # None when both groups have zero variance
    quantile: Decimal
    low: Decimal
    high: Decimal
    confidence: Decimal = CONFIDENCE

    def covers(self, value: Decimal | int) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class SeriesPoint:
    """Mean revenue per account of each group on one day around the release."""

    offset: int  # days from the release day (0 = released_on)
    day: dt.date
    adopters: Decimal | None
    non_adopters: Decimal | None


@dataclass(frozen=True)
class Attribution:
    """The attribution of one release over one window; ``as_dict()`` is the stored evidence."""

    release_id: int
    release_name: str
    released_on: dt.date
    window_days: int
    segment: str  # "" = all segments
    meters: tuple[str, ...]  # meter keys
    pre_start: dt.date
    pre_end: dt.date  # inclusive
    post_start: dt.date
    post_end: dt.date  # inclusive (the full window, whether or not data reaches it)
    post_days: int  # days of the post window with data so far (≤ window_days)
    adopters: Group
    non_adopters: Group
    excluded_prior_users: int
    excluded_new_adopters: int
    interval: Interval | None
    estimate_pct: Decimal | None  # estimate ÷ adopters' mean daily revenue before
    ci_low_pct: Decimal | None
    ci_high_pct: Decimal | None
    series: tuple[SeriesPoint, ...]
    caveats: tuple[str, ...]
    method: str

    @property
    def estimate(self) -> Decimal | None:
        return self.interval.estimate if self.interval else None

    def as_dict(self) -> dict:
        """JSON-safe: Decimals as strings (cents for money, 4 places for ratios), ISO dates."""
        interval = self.interval

        def group(g: Group) -> dict:
            return {
                "n": g.n,
                "pre_mean_per_day": _s(g.pre_mean, CENT),
                "post_mean_per_day": _s(g.post_mean, CENT),
                "mean_change_per_day": _s(g.mean_change, CENT),
                "accounts": [a.external_id for a in g.accounts],
            }

        return {
            "method": self.method,
            "release": {"id": self.release_id, "name": self.release_name, "released_on": self.released_on.isoformat()},
            "window_days": self.window_days,
            "segment": self.segment,
            "meters": list(self.meters),
            "pre_window": [self.pre_start.isoformat(), self.pre_end.isoformat()],
            "post_window": [self.post_start.isoformat(), self.post_end.isoformat()],
            "post_days_with_data": self.post_days,
            "adopters": group(self.adopters),
            "non_adopters": group(self.non_adopters),
            "excluded_prior_users": self.excluded_prior_users,
            "excluded_new_adopters": self.excluded_new_adopters,
            "estimate_per_day": _s(interval.estimate, CENT) if interval else None,
            "estimate_pct": _s(self.estimate_pct, RATIO),
            "confidence": str(CONFIDENCE),
            "ci_low_per_day": _s(interval.low, CENT) if interval else None,
            "ci_high_per_day": _s(interval.high, CENT) if interval else None,
            "ci_low_pct": _s(self.ci_low_pct, RATIO),
            "ci_high_pct": _s(self.ci_high_pct, RATIO),
            "standard_error": _s(interval.standard_error, CENT) if interval else None,
            "degrees_of_freedom": _s(interval.degrees_of_freedom, Decimal("0.1")) if interval else None,
            "t_quantile": str(interval.quantile) if interval else None,
            "series": [
                {
                    "offset": p.offset,
                    "day": p.day.isoformat(),
                    "adopters": _s(p.adopters, CENT),
                    "non_adopters": _s(p.non_adopters, CENT),
                }
                for p in self.series
            ],
            "caveats": list(self.caveats),
        }


def _s(value: Decimal | None, step: Decimal) -> str | None:
    return None if value is None else str(value.quantize(step, rounding=ROUND_HALF_UP))


# --- Statistics (pure) --------------------------------------------------------------------


def t_quantile(probability: Decimal, degrees_of_freedom: Decimal) -> Decimal:
    """Student's t quantile, to 4 places. ``scipy.special`` (imported here: it loads in about a
    second, against five for ``scipy.stats`` and its ``t.ppf``, which wraps the same function)."""
    from scipy.special import stdtrit

    return Decimal(str(round(float(stdtrit(float(degrees_of_freedom), float(probability))), 4)))


def welch_interval(
    first: Sequence[Decimal], second: Sequence[Decimal], *, confidence: Decimal = CONFIDENCE
) -> Interval | None:
    """mean(first) − mean(second) ± t(1 − α/2, ν) × √(s₁²/n₁ + s₂²/n₂), where ν is the
    Welch–Satterthwaite degrees of freedom. None when a group has fewer than 2 values."""
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        return None
    estimate = statistics.mean(first) - statistics.mean(second)
    v1 = statistics.variance(first) / n1
    v2 = statistics.variance(second) / n2
    standard_error = (v1 + v2).sqrt()
    probability = (1 + confidence) / 2
    if standard_error == 0:
        # Every change identical in both groups: the interval is the point.
        return Interval(estimate, ZERO, None, t_quantile(probability, Decimal(n1 + n2 - 2)), estimate, estimate)
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    quantile = t_quantile(probability, df)
    margin = quantile * standard_error
    return Interval(
        estimate=estimate,
        standard_error=standard_error,
        degrees_of_freedom=df,
        quantile=quantile,
        low=estimate - margin,
        high=estimate + margin,
        confidence=confidence,
    )


def method_text(*, window_days: int, released_on: dt.date, meters: Sequence[str], segment: str = "") -> str:
    """The method in words, with this run's numbers: shown on the page and stored as evidence."""
    scope = f"{Segment(segment).label} accounts" if segment else "Accounts"
    meter_list = ", ".join(meters) or "none"
    return (
        f"Difference in differences, adopters vs non-adopters, the {window_days} days before vs the "
        f"{window_days} days from the release on {released_on.isoformat()}. {scope} with usage in the days "
        f"before are compared. Adopters: first use of the release's meters ({meter_list}) in the {window_days} "
        f"days from the release day. Non-adopters: no use of them by the end of that window. Accounts that used "
        f"them before the release are excluded, as are adopters with no usage before it (new accounts). "
        f"Outcome: each account's own revenue over all meters (billable usage, not rolled up the hierarchy), "
        f"mean per day in each window, a day without usage counting as $0. Estimate: adopters' mean change "
        f"minus non-adopters' mean change, in $ per day per account, and as a share of adopters' mean daily "
        f"revenue before. {CONFIDENCE * 100:.0f}% confidence interval: estimate ± t × Welch standard error "
        f"√(s²ₐ/nₐ + s²ₙ/nₙ), t the Student's t quantile at the Welch–Satterthwaite degrees of freedom. "
        f"No estimate when a group has fewer than {MIN_GROUP} accounts. It assumes adopters would have "
        f"followed the non-adopters' trend without the release; accounts choose to adopt, so read it as "
        f"evidence of association, not proof. The post window includes the days before an account's first "
        f"use, so late adopters dilute the estimate."
    )


# --- The selector -------------------------------------------------------------------------

WINDOWS_SQL = """
WITH first_use AS (
    SELECT account_id, MIN(day) AS first_day
    FROM usage_dailyrollup
    WHERE meter_id = ANY(%(meters)s) AND quantity > 0 AND day < %(post_end)s
    GROUP BY account_id
), windows AS (
    SELECT account_id,
           COALESCE(SUM(revenue) FILTER (WHERE day < %(released_on)s), 0) AS pre_revenue,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(released_on)s), 0) AS post_revenue,
           COALESCE(BOOL_OR(quantity > 0 AND day < %(released_on)s), false) AS used_before
    FROM usage_dailyrollup
    WHERE day >= %(pre_start)s AND day < %(post_end)s
    GROUP BY account_id
)
-- Always one row at least: the last day with data, even when no account qualifies.
SELECT a.id, a.external_id, a.name, a.segment, f.first_day, w.pre_revenue, w.post_revenue, w.used_before,
       d.data_through
FROM (SELECT MAX(day) AS data_through FROM usage_dailyrollup WHERE day < %(post_end)s) d
LEFT JOIN (
    windows w
    JOIN accounts_account a ON a.id = w.account_id AND (%(segment)s = '' OR a.segment = %(segment)s)
    LEFT JOIN first_use f ON f.account_id = w.account_id
) ON true
ORDER BY a.name, a.id
"""

SERIES_SQL = """
SELECT day,
       COALESCE(SUM(revenue) FILTER (WHERE account_id = ANY(%(adopters)s)), 0),
       COALESCE(SUM(revenue) FILTER (WHERE account_id = ANY(%(non_adopters)s)), 0)
FROM usage_dailyrollup
WHERE day >= %(start)s AND day < %(end)s AND account_id = ANY(%(accounts)s)
GROUP BY day
"""


def release_meters(release: ProductRelease) -> list[Meter]:
    """The release's meters: its own plus those whose feature it names (one query)."""
    features = [f for f in release.features if f]
    return list(Meter.objects.filter(Q(releases=release) | Q(feature__in=features)).distinct().order_by("key"))


def release_attribution(
    release: ProductRelease, *, window_days: int = DEFAULT_WINDOW_DAYS, segment: str | None = None
) -> Attribution:
    """Attribute the change in billable usage around ``release`` to adopting it (see the module).

    ``window_days`` (7–90) is the length of each of the pre and post windows; ``segment``
    (a ``Segment`` value, or None / "" for all) restricts both groups. Raises ValueError
    for a window or segment out of range. When the data do not yet reach the end of the
    post window, the post window is the days with data so far (a caveat says so).
    """
    if not MIN_WINDOW_DAYS <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"The window must be {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} days.")
    segment = segment or ""
    if segment and segment not in Segment.values:
        raise ValueError(f"Unknown segment {segment!r}.")
    released_on = release.released_on
    window = dt.timedelta(days=window_days)
    pre_start, post_end = released_on - window, released_on + window  # post_end exclusive
    meters = release_meters(release)
    keys = tuple(m.key for m in meters)
    method = method_text(window_days=window_days, released_on=released_on, meters=keys, segment=segment)

    rows: list[tuple] = []
    if meters:
        with connection.cursor() as cursor:
            cursor.execute(
                WINDOWS_SQL,
                {
                    "meters": [m.pk for m in meters],
                    "released_on": released_on,
                    "pre_start": pre_start,
                    "post_end": post_end,
                    "segment": segment,
                },
            )
            rows = cursor.fetchall()
    data_through = rows[0][8] if rows else None
    post_days = 0 if data_through is None else max(0, min(window_days, (data_through - released_on).days + 1))

    adopters: list[AccountChange] = []
    non_adopters: list[AccountChange] = []
    prior_users = new_adopters = 0
    for account_id, external_id, name, seg, first_day, pre, post, used_before, _ in rows:
        if account_id is None:
            continue
        if first_day is not None and first_day < released_on:
            prior_users += 1
            continue
        if not used_before:
            new_adopters += first_day is not None
            continue
        change = AccountChange(
            account_id=account_id,
            external_id=external_id,
            name=name,
            segment=seg,
            first_used_on=first_day,
            pre_mean=Decimal(pre) / window_days,
            post_mean=Decimal(post) / post_days if post_days else ZERO,
        )
        (adopters if first_day is not None else non_adopters).append(change)

    series = _series(adopters, non_adopters, start=pre_start, released_on=released_on, post_days=post_days)
    adopter_group, non_adopter_group = Group(tuple(adopters)), Group(tuple(non_adopters))

    caveats: list[str] = []
    if not meters:
        caveats.append("The release names no meters, and no meter has one of its features: nothing to attribute.")
    elif post_days == 0:
        caveats.append("No usage data after the release yet.")
    elif post_days < window_days:
        caveats.append(
            f"The data reach only {post_days} of the {window_days} days after the release "
            f"(to {data_through.isoformat()}): the post window is those days."
        )
    if meters and post_days:
        if len(adopters) < MIN_GROUP:
            caveats.append(f"Not enough adopters to estimate ({len(adopters)}; at least {MIN_GROUP} needed).")
        if len(non_adopters) < MIN_GROUP:
            caveats.append(f"Not enough non-adopters to estimate ({len(non_adopters)}; at least {MIN_GROUP} needed).")

    interval = None
    if post_days and len(adopters) >= MIN_GROUP and len(non_adopters) >= MIN_GROUP:
        interval = welch_interval(adopter_group.changes, non_adopter_group.changes)
    base = adopter_group.pre_mean
    estimate_pct = ci_low_pct = ci_high_pct = None
    if interval and base:
        estimate_pct, ci_low_pct, ci_high_pct = (interval.estimate / base, interval.low / base, interval.high / base)
    elif interval:
        caveats.append("Adopters had no revenue before the release: no estimate as a percentage.")

    return Attribution(
        release_id=release.pk,
        release_name=release.name,
        released_on=released_on,
        window_days=window_days,
        segment=segment,
        meters=keys,
        pre_start=pre_start,
        pre_end=released_on - dt.timedelta(days=1),
        post_start=released_on,
        post_end=post_end - dt.timedelta(days=1),
        post_days=post_days,
        adopters=adopter_group,
        non_adopters=non_adopter_group,
        excluded_prior_users=prior_users,
        excluded_new_adopters=new_adopters,
        interval=interval,
        estimate_pct=estimate_pct,
        ci_low_pct=ci_low_pct,
        ci_high_pct=ci_high_pct,
        series=series,
        caveats=tuple(caveats),
        method=method,
    )


def _series(
    adopters: list[AccountChange],
    non_adopters: list[AccountChange],
    *,
    start: dt.date,
    released_on: dt.date,
    post_days: int,
) -> tuple[SeriesPoint, ...]:
    """Each group's mean revenue per account for every day from ``start`` to the last day
    with data in the post window (one query; a day without rollups is $0)."""
    if not adopters and not non_adopters:
        return ()
    end = released_on + dt.timedelta(days=post_days)
    adopter_ids = [a.account_id for a in adopters]
    non_adopter_ids = [a.account_id for a in non_adopters]
    with connection.cursor() as cursor:
        cursor.execute(
            SERIES_SQL,
            {
                "adopters": adopter_ids,
                "non_adopters": non_adopter_ids,
                "accounts": adopter_ids + non_adopter_ids,
                "start": start,
                "end": end,
            },
        )
        sums = {day: (Decimal(a), Decimal(n)) for day, a, n in cursor.fetchall()}
    points = []
    for k in range((end - start).days):
        day = start + dt.timedelta(days=k)
        a, n = sums.get(day, (ZERO, ZERO))
        points.append(
            SeriesPoint(
                offset=(day - released_on).days,
                day=day,
                adopters=a / len(adopters) if adopters else None,
                non_adopters=n / len(non_adopters) if non_adopters else None,
            )
        )
    return tuple(points)
