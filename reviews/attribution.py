"""Did a product release drive billable usage? The agreed answer for the monthly review
(docs/metrics.md#review-attribution).

Method: adopters against **matched comparison accounts**, each account's **relative**
change, before vs after the release. Comparing absolute dollars across all non-adopters
told a product manager that a release whose few small adopters more than doubled "cost $7
a day", because the non-adopters were twenty times larger; a relative change against
accounts of the same segment and size answers the question that was asked.

* The release's meters are ``release.meters`` plus every meter whose ``feature`` is in
  ``release.features``.
* Adopters: accounts whose first use (a rollup with quantity > 0) of any of those meters
  falls in the post window ``[released_on, released_on + W)``.
* Comparison pool: accounts that had not used them by the end of the post window.
* Both need revenue in the pre window ``[released_on − W, released_on)``, and in its first
  quarter (``established_days``): without a "before" there is no relative change, and an
  account that starts inside the window grows by onboarding, not by the release. Accounts
  that used the release's meters before it are in neither group.
* Matching: each adopter is matched to the pool accounts of its segment whose mean daily
  revenue before lies within a factor of 2 of its own (½× to 2×), the ``MAX_MATCHES``
  nearest by size (larger ÷ smaller; ties by account id). A pool account may match
  several adopters. An adopter without any is unmatched and left out of the estimate.
* Relative change of an account: mean daily revenue after ÷ before − 1, over all its
  meters (its own rows, not rolled up the hierarchy; a day without usage is $0).
* Effect of one adopter: its relative change − the mean relative change of its matches.
  The estimate is the mean effect over the matched adopters (= the adopters' mean
  relative change − their matched comparison's), in percentage points of the pre-release
  revenue; the 90% interval is a Student t interval over those per-adopter effects,
  ``mean ± t(0.95, n − 1) × s ÷ √n``.
* No estimate with fewer than ``MIN_MATCHED`` matched adopters or ``MIN_COMPARISONS``
  distinct comparison accounts. The verdict says "no detectable effect" when the interval
  contains 0.

``release_attribution`` runs three queries whatever the number of accounts (the meters,
one statement for every account's windows, one for the matched accounts' daily revenue);
matching and the statistics are pure functions over Decimals, so tests work them out by hand.
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property

from django.db import connection
from django.db.models import Q

from accounts.models import Segment
from revops.templatetags.fmt import signed_pct
from usage.models import Meter, ProductRelease

METHOD_VERSION = 2  # stored with the evidence: version 1 compared absolute $ against all non-adopters
DEFAULT_WINDOW_DAYS = 28
MIN_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 90
# A comparison account is "of similar size" within this factor of the adopter's pre-window revenue.
SIZE_FACTOR = Decimal(2)
MAX_MATCHES = 5
# Below this many matched adopters or distinct comparison accounts there is no estimate.
MIN_MATCHED = 5
MIN_COMPARISONS = 5
# Compared accounts need revenue in the first quarter of the window before (7 days of the
# default 28): an account that starts inside it shows onboarding growth, not the release's.
ESTABLISHED_SHARE = 4
CONFIDENCE = Decimal("0.90")
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
ZERO = Decimal(0)
ONE = Decimal(1)


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

    @property
    def relative_change(self) -> Decimal:
        """After ÷ before − 1 (every account compared has revenue before)."""
        return self.post_mean / self.pre_mean - 1

    @property
    def segment_label(self) -> str:
        return _segment_label(self.segment)


@dataclass(frozen=True)
class Match:
    """An adopter and the comparison accounts matched to it (none: unmatched)."""

    adopter: AccountChange
    comparisons: tuple[AccountChange, ...]

    @property
    def comparison_change(self) -> Decimal | None:
        """Its matches' relative change taken together: Σ after ÷ Σ before − 1."""
        if not self.comparisons:
            return None
        return sum(c.post_mean for c in self.comparisons) / sum(c.pre_mean for c in self.comparisons) - 1

    @property
    def effect(self) -> Decimal | None:
        """The adopter's relative change − its matches' (percentage points as a fraction)."""
        if not self.comparisons:
            return None
        return self.adopter.relative_change - self.comparison_change


@dataclass(frozen=True)
class Interval:
    """A (weighted) mean effect with its Student t confidence interval."""

    estimate: Decimal
    standard_error: Decimal
    degrees_of_freedom: int
    quantile: Decimal
    low: Decimal
    high: Decimal
    confidence: Decimal = CONFIDENCE

    def covers(self, value: Decimal | int) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class SeriesPoint:
    """Revenue on one day as a share of the pre-window level (1 = as before), averaged
    over the matched adopters and over their matched comparisons."""

    offset: int  # days from the release day (0 = released_on)
    day: dt.date
    adopters: Decimal | None
    comparison: Decimal | None


@dataclass(frozen=True)
class Attribution:
    """The attribution of one release over one window; ``as_dict()`` is the stored evidence."""

    release_id: int
    release_name: str
    released_on: dt.date
    window_days: int
    segment: str  # "" = all segments
    meters: tuple[str, ...]  # meter keys
    meter_names: tuple[str, ...]
    pre_start: dt.date
    pre_end: dt.date  # inclusive
    post_start: dt.date
    post_end: dt.date  # inclusive (the full window, whether or not data reaches it)
    post_days: int  # days of the post window with data so far (≤ window_days)
    matches: tuple[Match, ...]  # one per adopter, in name order
    pool: int  # accounts that could be compared (non-adopters with revenue before)
    excluded_prior_users: int
    excluded_new_adopters: int
    interval: Interval | None
    series: tuple[SeriesPoint, ...]
    caveats: tuple[str, ...]
    method: str

    @property
    def adopters(self) -> tuple[AccountChange, ...]:
        return tuple(m.adopter for m in self.matches)

    @cached_property
    def matched(self) -> tuple[Match, ...]:
        return tuple(m for m in self.matches if m.comparisons)

    @property
    def unmatched(self) -> int:
        return len(self.matches) - len(self.matched)

    @cached_property
    def comparison_accounts(self) -> tuple[AccountChange, ...]:
        """The distinct comparison accounts used, by name."""
        seen = {c.account_id: c for m in self.matched for c in m.comparisons}
        return tuple(sorted(seen.values(), key=lambda c: (c.name, c.account_id)))

    @property
    def adopters_change(self) -> Decimal | None:
        """The matched adopters' relative change together: Σ after ÷ Σ before − 1."""
        return _weighted_mean([(m.adopter.pre_mean, m.adopter.relative_change) for m in self.matched])

    @property
    def comparison_change(self) -> Decimal | None:
        """Their matched comparison's relative change, each adopter's matches weighted by
        the adopter's revenue before (what the adopters would have done had they grown as
        their matches did)."""
        return _weighted_mean([(m.adopter.pre_mean, m.comparison_change) for m in self.matched])

    @property
    def adopters_pre_mean(self) -> Decimal | None:
        """Mean daily revenue before, per matched adopter (and so on: for the table)."""
        return _mean(m.adopter.pre_mean for m in self.matched)

    @property
    def adopters_post_mean(self) -> Decimal | None:
        return _mean(m.adopter.post_mean for m in self.matched)

    @property
    def comparison_pre_mean(self) -> Decimal | None:
        return _mean(c.pre_mean for c in self.comparison_accounts)

    @property
    def comparison_post_mean(self) -> Decimal | None:
        return _mean(c.post_mean for c in self.comparison_accounts)

    @property
    def estimate(self) -> Decimal | None:
        return self.interval.estimate if self.interval else None

    @property
    def detectable(self) -> bool | None:
        """True when the interval excludes 0; None without an estimate."""
        return None if self.interval is None else not self.interval.covers(0)

    @property
    def verdict(self) -> str:
        return verdict_text(
            interval=self.interval,
            has_meters=bool(self.meters),
            post_days=self.post_days,
            matched=len(self.matched),
            comparisons=len(self.comparison_accounts),
        )

    def as_dict(self) -> dict:
        """JSON-safe: Decimals as strings (cents for money, 4 places for ratios), ISO dates."""
        interval = self.interval
        matched = self.matched
        comparisons = self.comparison_accounts
        return {
            "version": METHOD_VERSION,
            "method": self.method,
            "release": {"id": self.release_id, "name": self.release_name, "released_on": self.released_on.isoformat()},
            "window_days": self.window_days,
            "segment": self.segment,
            "meters": list(self.meters),
            "meter_names": list(self.meter_names),
            "pre_window": [self.pre_start.isoformat(), self.pre_end.isoformat()],
            "post_window": [self.post_start.isoformat(), self.post_end.isoformat()],
            "post_days_with_data": self.post_days,
            "adopters": {
                "n": len(self.matches),
                "matched": len(matched),
                "unmatched": self.unmatched,
                "pre_mean_per_day": _s(self.adopters_pre_mean, CENT),
                "post_mean_per_day": _s(self.adopters_post_mean, CENT),
                "relative_change": _s(self.adopters_change, RATIO),
                "accounts": [m.adopter.external_id for m in self.matches],
            },
            "comparison": {
                "pool": self.pool,
                "n": len(comparisons),
                "pre_mean_per_day": _s(self.comparison_pre_mean, CENT),
                "post_mean_per_day": _s(self.comparison_post_mean, CENT),
                "relative_change": _s(self.comparison_change, RATIO),
                "accounts": [c.external_id for c in comparisons],
            },
            "effect": _s(interval.estimate, RATIO) if interval else None,
            "confidence": str(CONFIDENCE),
            "ci_low": _s(interval.low, RATIO) if interval else None,
            "ci_high": _s(interval.high, RATIO) if interval else None,
            "standard_error": _s(interval.standard_error, RATIO) if interval else None,
            "degrees_of_freedom": interval.degrees_of_freedom if interval else None,
            "t_quantile": str(interval.quantile) if interval else None,
            "detectable": self.detectable,
            "verdict": self.verdict,
            "excluded_prior_users": self.excluded_prior_users,
            "excluded_new_adopters": self.excluded_new_adopters,
            "series": [
                {
                    "offset": p.offset,
                    "day": p.day.isoformat(),
                    "adopters": _s(p.adopters, RATIO),
                    "comparison": _s(p.comparison, RATIO),
                }
                for p in self.series
            ],
            "caveats": list(self.caveats),
        }


def _s(value: Decimal | None, step: Decimal) -> str | None:
    return None if value is None else str(value.quantize(step, rounding=ROUND_HALF_UP))


def _mean(values) -> Decimal | None:
    values = list(values)
    return statistics.mean(values) if values else None


def _weighted_mean(pairs: Sequence[tuple[Decimal, Decimal]]) -> Decimal | None:
    total = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / total if pairs and total else None


def _segment_label(segment: str) -> str:
    return Segment(segment).label if segment in Segment.values else segment


# --- Matching and statistics (pure) --------------------------------------------------------


def match(
    adopters: Sequence[AccountChange],
    pool: Sequence[AccountChange],
    *,
    factor: Decimal = SIZE_FACTOR,
    limit: int = MAX_MATCHES,
) -> tuple[Match, ...]:
    """Each adopter with the pool accounts of its segment whose pre-window daily revenue is
    within ``factor`` of its own, the ``limit`` nearest (larger ÷ smaller; ties by id)."""
    by_segment: dict[str, list[AccountChange]] = defaultdict(list)
    for account in pool:
        by_segment[account.segment].append(account)
    sizes: dict[str, list[Decimal]] = {}
    for segment, accounts in by_segment.items():
        accounts.sort(key=lambda a: (a.pre_mean, a.account_id))
        sizes[segment] = [a.pre_mean for a in accounts]
    out = []
    for adopter in adopters:
        candidates = by_segment.get(adopter.segment, [])
        keys = sizes.get(adopter.segment, [])
        # The band [size ÷ factor, size × factor] of the sorted pool, found by bisection.
        low = bisect.bisect_left(keys, adopter.pre_mean / factor)
        high = bisect.bisect_right(keys, adopter.pre_mean * factor)
        band = candidates[low:high]
        nearest = sorted(band, key=lambda c: (_size_ratio(adopter.pre_mean, c.pre_mean), c.account_id))[:limit]
        out.append(Match(adopter=adopter, comparisons=tuple(sorted(nearest, key=lambda c: (c.name, c.account_id)))))
    return tuple(out)


def _size_ratio(a: Decimal, b: Decimal) -> Decimal:
    return max(a, b) / min(a, b)


def t_quantile(probability: Decimal, degrees_of_freedom: Decimal | int) -> Decimal:
    """Student's t quantile, to 4 places. ``scipy.special`` (imported here: it loads in about a
    second, against five for ``scipy.stats`` and its ``t.ppf``, which wraps the same function)."""
    from scipy.special import stdtrit

    return Decimal(str(round(float(stdtrit(float(degrees_of_freedom), float(probability))), 4)))


def t_interval(
    values: Sequence[Decimal], weights: Sequence[Decimal] | None = None, *, confidence: Decimal = CONFIDENCE
) -> Interval | None:
    """The weighted mean of ``values`` ± t(1 − α/2, n − 1) × SE; None with fewer than 2.

    ē = Σwᵢeᵢ ÷ Σwᵢ and SE² = n ÷ (n − 1) × Σwᵢ²(eᵢ − ē)² ÷ (Σwᵢ)² (the linearized standard
    error of a ratio of sums); with equal weights it is the textbook s ÷ √n."""
    n = len(values)
    if n < 2:
        return None
    weights = list(weights) if weights is not None else [ONE] * n
    total = sum(weights)
    estimate = sum(w * e for w, e in zip(weights, values, strict=True)) / total
    spread = sum(w * w * (e - estimate) ** 2 for w, e in zip(weights, values, strict=True))
    standard_error = (Decimal(n) / (n - 1) * spread / (total * total)).sqrt()
    quantile = t_quantile((1 + confidence) / 2, n - 1)
    margin = quantile * standard_error
    return Interval(
        estimate=estimate,
        standard_error=standard_error,
        degrees_of_freedom=n - 1,
        quantile=quantile,
        low=estimate - margin,
        high=estimate + margin,
        confidence=confidence,
    )


def verdict_text(*, interval: Interval | None, has_meters: bool, post_days: int, matched: int, comparisons: int) -> str:
    """The answer in one line: an effect with its interval, no detectable effect, or why none."""
    if not has_meters:
        return "Nothing to attribute: the release names no meters."
    if not post_days:
        return "Too early to judge: no usage data after the release yet."
    if interval is None:
        return (
            f"Too few to judge: {matched} matched adopter{'s' if matched != 1 else ''} and {comparisons} "
            f"comparison account{'s' if comparisons != 1 else ''} (at least {MIN_MATCHED} of each needed)."
        )
    ci = f"{interval.confidence * 100:.0f}% CI {signed_pct(interval.low)} to {signed_pct(interval.high)}"
    if interval.covers(0):
        return f"No detectable effect ({ci})."
    return f"{signed_pct(interval.estimate)} ({ci})."


def method_text(*, window_days: int, released_on: dt.date, meters: Sequence[str], segment: str = "") -> str:
    """The method in words, with this run's numbers: shown on the page and stored as evidence."""
    scope = f"{_segment_label(segment)} accounts" if segment else "Accounts"
    meter_list = ", ".join(meters) or "none"
    established = established_days(window_days)
    return (
        f"Adopters against matched comparison accounts, each account's relative change in revenue: the "
        f"{window_days} days before vs the {window_days} days from the release on {released_on.isoformat()}. "
        f"Adopters: first use of the release's meters ({meter_list}) in the {window_days} days from the release "
        f"day. Comparison accounts: no use of them by the end of that window. {scope} need revenue in the days "
        f"before, and in the first {established} of them (accounts still onboarding are left out); accounts "
        f"that used the meters before the release are left out. Each adopter is matched to the comparison "
        f"accounts of its segment whose mean daily revenue before is within a factor of {SIZE_FACTOR:.0f} of "
        f"its own (the {MAX_MATCHES} nearest in size); adopters without one are left out. Relative change: mean "
        f"daily revenue after ÷ before − 1, over all meters (each account's own usage, a day without usage "
        f"counting as $0); for an adopter's matches, their revenue after ÷ before together. Effect of an "
        f"adopter: its relative change minus its matches'; the estimate is the mean effect over matched "
        f"adopters weighted by their revenue before (the adopters' relative change together minus their matched "
        f"comparison's), in percentage points of revenue before, with a {CONFIDENCE * 100:.0f}% Student t "
        f"interval over those effects (n − 1 degrees of freedom). No estimate with fewer than {MIN_MATCHED} "
        f"matched adopters or {MIN_COMPARISONS} comparison accounts; no detectable effect when the interval "
        f"contains 0. Accounts choose to adopt, so read it as evidence of association, not proof. The window "
        f"after includes the days before an account's first use, so late adopters dilute the estimate."
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
           COALESCE(SUM(revenue) FILTER (WHERE day < %(established_by)s), 0) AS early_revenue,
           COALESCE(SUM(revenue) FILTER (WHERE day < %(released_on)s), 0) AS pre_revenue,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(released_on)s), 0) AS post_revenue
    FROM usage_dailyrollup
    WHERE day >= %(pre_start)s AND day < %(post_end)s
    GROUP BY account_id
)
-- Always one row at least: the last day with data, even when no account qualifies.
SELECT a.id, a.external_id, a.name, a.segment, f.first_day, w.early_revenue, w.pre_revenue, w.post_revenue,
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
SELECT account_id, day, SUM(revenue)
FROM usage_dailyrollup
WHERE day >= %(start)s AND day < %(end)s AND account_id = ANY(%(accounts)s)
GROUP BY account_id, day
"""


def established_days(window_days: int) -> int:
    """The first days of the window before in which a compared account needs revenue."""
    return max(1, window_days // ESTABLISHED_SHARE)


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
    names = tuple(m.name for m in meters)
    method = method_text(window_days=window_days, released_on=released_on, meters=names, segment=segment)

    rows: list[tuple] = []
    if meters:
        with connection.cursor() as cursor:
            cursor.execute(
                WINDOWS_SQL,
                {
                    "meters": [m.pk for m in meters],
                    "released_on": released_on,
                    "pre_start": pre_start,
                    "established_by": pre_start + dt.timedelta(days=established_days(window_days)),
                    "post_end": post_end,
                    "segment": segment,
                },
            )
            rows = cursor.fetchall()
    data_through = rows[0][8] if rows else None
    post_days = 0 if data_through is None else max(0, min(window_days, (data_through - released_on).days + 1))

    adopters: list[AccountChange] = []
    pool: list[AccountChange] = []
    prior_users = new_adopters = 0
    for account_id, external_id, name, seg, first_day, early, pre, post, _ in rows:
        if account_id is None:
            continue
        if first_day is not None and first_day < released_on:
            prior_users += 1
            continue
        if Decimal(early) <= 0 or Decimal(pre) <= 0:
            # No revenue at the start of the window before: new, or still onboarding.
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
        (adopters if first_day is not None else pool).append(change)

    matches = match(adopters, pool) if post_days else tuple(Match(a, ()) for a in adopters)
    matched = [m for m in matches if m.comparisons]
    distinct = len({c.account_id for m in matched for c in m.comparisons})

    caveats: list[str] = []
    if not meters:
        caveats.append("The release names no meters, and no meter has one of its features: nothing to attribute.")
    elif post_days == 0:
        caveats.append("No usage data after the release yet.")
    elif post_days < window_days:
        caveats.append(
            f"The data reach only {post_days} of the {window_days} days after the release "
            f"(to {data_through.isoformat()}): the window after is those days."
        )
    if meters and post_days:
        unmatched = len(matches) - len(matched)
        if unmatched:
            caveats.append(
                f"{unmatched} of {len(matches)} adopter{'s' if len(matches) != 1 else ''} had no comparison account "
                f"of their segment within a factor of {SIZE_FACTOR:.0f} of their size: left out of the estimate."
            )
        if len(matched) < MIN_MATCHED:
            caveats.append(f"Too few matched adopters to judge ({len(matched)}; at least {MIN_MATCHED} needed).")
        if distinct < MIN_COMPARISONS:
            caveats.append(f"Too few comparison accounts to judge ({distinct}; at least {MIN_COMPARISONS} needed).")

    interval = None
    if post_days and len(matched) >= MIN_MATCHED and distinct >= MIN_COMPARISONS:
        interval = t_interval([m.effect for m in matched], [m.adopter.pre_mean for m in matched])

    series = _series(matches, start=pre_start, released_on=released_on, post_days=post_days)
    return Attribution(
        release_id=release.pk,
        release_name=release.name,
        released_on=released_on,
        window_days=window_days,
        segment=segment,
        meters=keys,
        meter_names=names,
        pre_start=pre_start,
        pre_end=released_on - dt.timedelta(days=1),
        post_start=released_on,
        post_end=post_end - dt.timedelta(days=1),
        post_days=post_days,
        matches=matches,
        pool=len(pool),
        excluded_prior_users=prior_users,
        excluded_new_adopters=new_adopters,
        interval=interval,
        series=series,
        caveats=tuple(caveats),
        method=method,
    )


def _series(
    matches: Sequence[Match], *, start: dt.date, released_on: dt.date, post_days: int
) -> tuple[SeriesPoint, ...]:
    """Each day's revenue as a share of the level before (1 = as before): the matched
    adopters' summed revenue ÷ their summed mean before, and their counterfactual, each
    adopter's matches (summed the same way) weighted by the adopter's revenue before. One
    query; a day without rollups is $0. Built as the estimate is, so the chart and the
    estimate agree: each line's mean over the days after, minus 1, is that group's
    relative change. Without any match, the adopters' line alone."""
    matched = [m for m in matches if m.comparisons] or list(matches)
    if not matched:
        return ()
    end = released_on + dt.timedelta(days=post_days)
    ids = {m.adopter.account_id for m in matched} | {c.account_id for m in matched for c in m.comparisons}
    with connection.cursor() as cursor:
        cursor.execute(SERIES_SQL, {"accounts": sorted(ids), "start": start, "end": end})
        revenue = {(account_id, day): Decimal(value) for account_id, day, value in cursor.fetchall()}
    weight = sum(m.adopter.pre_mean for m in matched)
    with_matches = [(m, sum(c.pre_mean for c in m.comparisons)) for m in matched if m.comparisons]

    points = []
    for k in range((end - start).days):
        day = start + dt.timedelta(days=k)
        adopters = sum(revenue.get((m.adopter.account_id, day), ZERO) for m in matched) / weight
        comparison = None
        if with_matches:
            comparison = (
                sum(
                    m.adopter.pre_mean * sum(revenue.get((c.account_id, day), ZERO) for c in m.comparisons) / size
                    for m, size in with_matches
                )
                / weight
            )
        points.append(SeriesPoint(offset=(day - released_on).days, day=day, adopters=adopters, comparison=comparison))
    return tuple(points)


ATTRIBUTION_CACHE_S = 24 * 3600


def cached_release_attribution(
    release: ProductRelease, *, window_days: int = DEFAULT_WINDOW_DAYS, segment: str | None = None
) -> Attribution:
    """``release_attribution``, kept until rollups change (``usage.ingestion.rollups.rollups_version``)
    or the release's day, meters or features do: the product page shows five of them, and
    each reads months of rollups."""
    from django.core.cache import cache

    from usage.ingestion.rollups import rollups_version

    version = rollups_version()
    if version is None:
        return release_attribution(release, window_days=window_days, segment=segment)
    meters = ",".join(str(pk) for pk in sorted(release.meters.values_list("pk", flat=True)))
    features = ",".join(sorted(release.features or []))
    key = f"reviews:attribution:v2:{release.pk}:{release.released_on}:{meters}:{features}:{window_days}:{segment or ''}:{version}"
    result = cache.get(key)
    if result is None:
        result = release_attribution(release, window_days=window_days, segment=segment)
        cache.set(key, result, timeout=ATTRIBUTION_CACHE_S)
    return result
