"""The product managers' page: billable usage and adoption by meter and by feature, month by
month, and the latest releases with their attribution verdicts (docs/metrics.md#review-product).

* Months are calendar months, the last one the month of ``as_of`` (the newest day with
  usage unless given); it is *partial* when ``as_of`` is not its last day, and says so.
* Revenue: priced revenue of the daily rollups, each account's own rows.
* Accounts using a meter in a month: accounts with a rollup of quantity > 0 on it; using
  a feature: on any meter carrying that feature; active: on any meter. The adoption of a
  meter or feature is its accounts ÷ the active accounts of that month.
* Adoption is compared on *complete* months (the last complete one against the one
  before), so a running month never reads as a fall.

``product_usage`` reads in four queries whatever the number of accounts or meters (the
meters, then by meter, by feature and all active accounts, each one grouped statement).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncMonth

from reviews import attribution, labels
from usage.models import DailyRollup, Meter, ProductRelease

DEFAULT_MONTHS = 6
MIN_MONTHS, MAX_MONTHS = 2, 24
LATEST_RELEASES = 5
ZERO = Decimal(0)


@dataclass(frozen=True)
class Month:
    start: dt.date
    days_covered: int  # days up to as_of
    days: int

    @property
    def partial(self) -> bool:
        return self.days_covered < self.days

    @property
    def label(self) -> str:
        return f"{self.start:%b %Y}"


@dataclass(frozen=True)
class UsageLine:
    """A meter's or a feature's revenue and accounts using it, month by month."""

    key: str
    label: str
    detail: str  # the meter's unit and feature, or the feature's meters
    revenue: tuple[Decimal, ...]
    accounts: tuple[int, ...]
    adoption: tuple[Decimal | None, ...]  # accounts ÷ active accounts that month
    complete: int  # how many of the months, from the first, are complete

    def _last(self, values: tuple, back: int = 0):
        k = self.complete - 1 - back
        return values[k] if k >= 0 else None

    @property
    def latest_revenue(self) -> Decimal | None:
        """In the last complete month (and so on)."""
        return self._last(self.revenue)

    @property
    def latest_accounts(self) -> int | None:
        return self._last(self.accounts)

    @property
    def latest_adoption(self) -> Decimal | None:
        return self._last(self.adoption)

    @property
    def accounts_change(self) -> int | None:
        """Accounts using it in the last complete month − in the month before."""
        now, before = self._last(self.accounts), self._last(self.accounts, 1)
        return None if now is None or before is None else now - before

    @property
    def revenue_change(self) -> Decimal | None:
        """Revenue in the last complete month ÷ the month before − 1."""
        now, before = self._last(self.revenue), self._last(self.revenue, 1)
        return None if now is None or not before else now / before - 1

    def as_series(self) -> dict:
        return {"label": self.label, "revenue": list(self.revenue), "accounts": list(self.accounts)}


@dataclass(frozen=True)
class ProductUsage:
    as_of: dt.date
    months: tuple[Month, ...]
    active: tuple[int, ...]
    meters: tuple[UsageLine, ...]
    features: tuple[UsageLine, ...]

    @property
    def partial(self) -> str:
        """ "partial: 3 of 31 days" when the last month is not complete, else ""."""
        return labels.partial_label(self.months[-1].start, self.as_of) if self.months else ""

    @property
    def complete(self) -> int:
        """How many months, from the first, are complete."""
        return len(self.months) - (1 if self.months and self.months[-1].partial else 0)

    @property
    def latest_complete(self) -> Month | None:
        return self.months[self.complete - 1] if self.complete else None

    @property
    def previous_complete(self) -> Month | None:
        return self.months[self.complete - 2] if self.complete >= 2 else None


def latest_usage_day() -> dt.date | None:
    return DailyRollup.objects.aggregate(day=Max("day"))["day"]


def months_ending(as_of: dt.date, count: int) -> list[dt.date]:
    """The first days of the ``count`` calendar months ending with ``as_of``'s, oldest first."""
    first = as_of.replace(day=1)
    out = [first]
    for _ in range(count - 1):
        out.append((out[-1] - dt.timedelta(days=1)).replace(day=1))
    return out[::-1]


def product_usage(*, as_of: dt.date, months: int = DEFAULT_MONTHS) -> ProductUsage:
    """Revenue, accounts using and adoption by meter and by feature for the ``months``
    calendar months ending with ``as_of``'s (see the module)."""
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise ValueError(f"Show {MIN_MONTHS} to {MAX_MONTHS} months.")
    starts = months_ending(as_of, months)
    coverage = [labels.month_coverage(m, as_of) for m in starts]
    complete = sum(covered == days for covered, days in coverage)
    rollups = DailyRollup.objects.filter(day__gte=starts[0], day__lte=as_of).annotate(month=TruncMonth("day"))
    using = Count("account", distinct=True, filter=Q(quantity__gt=0))

    meters = list(Meter.objects.order_by("name", "key"))
    by_meter = {
        (r["month"], r["meter_id"]): r
        for r in rollups.values("month", "meter_id").annotate(revenue=Sum("revenue"), accounts=using)
    }
    by_feature = {
        (r["month"], r["meter__feature"]): r
        for r in rollups.exclude(meter__feature="")
        .values("month", "meter__feature")
        .annotate(revenue=Sum("revenue"), accounts=using)
    }
    active = {r["month"]: r["accounts"] for r in rollups.values("month").annotate(accounts=using)}
    active_counts = tuple(active.get(m, 0) for m in starts)

    def line(key: str, label: str, detail: str, rows: dict, ref) -> UsageLine:
        revenue = tuple((rows[(m, ref)]["revenue"] or ZERO) if (m, ref) in rows else ZERO for m in starts)
        accounts = tuple(rows[(m, ref)]["accounts"] if (m, ref) in rows else 0 for m in starts)
        adoption = tuple(Decimal(a) / n if n else None for a, n in zip(accounts, active_counts, strict=True))
        return UsageLine(
            key=key,
            label=label,
            detail=detail,
            revenue=revenue,
            accounts=accounts,
            adoption=adoption,
            complete=complete,
        )

    meters_of: dict[str, list[str]] = defaultdict(list)
    for m in meters:
        if m.feature:
            meters_of[m.feature].append(m.name)
    meter_lines = tuple(
        line(
            m.key,
            m.name,
            f"per {m.unit}" + (f" · {labels.feature(m.feature)}" if m.feature else ""),
            by_meter,
            m.pk,
        )
        for m in meters
    )
    feature_lines = tuple(
        line(f, labels.feature(f), ", ".join(names), by_feature, f)
        for f, names in sorted(meters_of.items(), key=lambda item: labels.feature(item[0]).lower())
    )
    return ProductUsage(
        as_of=as_of,
        months=tuple(Month(m, *c) for m, c in zip(starts, coverage, strict=True)),
        active=active_counts,
        meters=meter_lines,
        features=feature_lines,
    )


@dataclass(frozen=True)
class ReleaseVerdict:
    release: ProductRelease
    result: attribution.Attribution


def latest_release_verdicts(
    *, as_of: dt.date, limit: int = LATEST_RELEASES, window_days: int = attribution.DEFAULT_WINDOW_DAYS
) -> list[ReleaseVerdict]:
    """The ``limit`` newest releases shipped by ``as_of``, each with its attribution (the
    analysis page's default window): one query, then three per release."""
    releases = ProductRelease.objects.filter(released_on__lte=as_of).order_by("-released_on", "name")[:limit]
    return [
        ReleaseVerdict(release=r, result=attribution.cached_release_attribution(r, window_days=window_days))
        for r in releases
    ]
