"""Pilot reports: a pilot comp plan's accounts against comparable accounts outside it
(docs/metrics.md#review-pilots: reported before a wider roll-out).

The pilot is its plan's latest version: ``accounts`` (external ids) and ``window``
(``start``/``end`` inclusive). Everything is measured over the window *to date*: from its
start to its end or the last day with usage data, whichever is earlier.

* **Comparable accounts**: not in the pilot, in the segment of a pilot account, with
  revenue in the 90 days before the window within ×0.5 of the smallest and ×2 of the
  largest pilot account of that segment over the same 90 days (and above $0).
* **Net-new consumption**: revenue in the window minus revenue in the as many days just
  before it (the same figure the pilot bonus in ``comp.engine`` pays on).
* **Expansion velocity**: compounded monthly growth of run rate over the window, the shared metric's
  definition with the window in place of the trailing 90 days: revenue in the last 30
  days of the window against the 30 days before it, ``(now/then)^(30/days) − 1``
  (``usage.signals.metrics.compound_monthly_growth``). None without revenue in the 30 days before.
* **Activities**: logged activities (calls, meetings, emails, reviews, notes) per account
  in the window.

Each account's own usage counts (not rolled up the hierarchy), as the bonus does.
``pilot_report`` reads in two queries (the latest data day, then every account of the
pilot's segments at once); ``compare`` is the pure rest.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Max

from comp.models import Plan, PlanType, PlanVersion
from reviews import labels
from usage.models import DailyRollup
from usage.signals.metrics import compound_monthly_growth

SIZE_DAYS = 90
SIZE_LOW, SIZE_HIGH = Decimal("0.5"), Decimal(2)
RUN_RATE_DAYS = 30
ZERO = Decimal(0)

METHOD = (
    "Pilot accounts against comparable accounts outside the pilot, over the pilot window to date. "
    "Comparable: same segment as a pilot account, with revenue in the 90 days before the window above $0 and "
    "between half the smallest and twice the largest pilot account of that segment over those 90 days. "
    "Net-new consumption: revenue in the window minus revenue in as many days just before it. "
    "Expansion velocity: compounded monthly growth of run rate over the window — revenue in its last 30 days "
    "against the 30 days before it starts, (now ÷ then)^(30 ÷ days) − 1; none without revenue in those 30 days "
    "before. Activities: logged customer activities per account in the window. Each account's own usage "
    "(not rolled up the hierarchy). Medians are per account; differences are pilot minus comparison."
)


@dataclass(frozen=True)
class PilotAccount:
    account_id: int
    external_id: str
    name: str
    segment: str
    in_pilot: bool
    size: Decimal  # revenue in the 90 days before the window
    revenue_before: Decimal  # as many days as the window (to date), just before it
    revenue_in_window: Decimal
    run_rate_then: Decimal  # revenue in the 30 days before the window
    run_rate_now: Decimal  # revenue in the window's last 30 days (to date)
    activities: int

    @property
    def net_new(self) -> Decimal:
        return self.revenue_in_window - self.revenue_before

    @property
    def segment_label(self) -> str:
        return labels.segment(self.segment)


@dataclass(frozen=True)
class AccountResult:
    account: PilotAccount
    velocity: Decimal | None


@dataclass(frozen=True)
class GroupResult:
    """One side of the comparison: totals over its accounts and per-account medians."""

    accounts: tuple[AccountResult, ...]

    @property
    def n(self) -> int:
        return len(self.accounts)

    @property
    def revenue_before(self) -> Decimal:
        return sum((r.account.revenue_before for r in self.accounts), ZERO)

    @property
    def revenue_in_window(self) -> Decimal:
        return sum((r.account.revenue_in_window for r in self.accounts), ZERO)

    @property
    def net_new(self) -> Decimal:
        return self.revenue_in_window - self.revenue_before

    @property
    def growth(self) -> Decimal | None:
        """The group's revenue in the window ÷ before − 1."""
        before = self.revenue_before
        return self.revenue_in_window / before - 1 if before > 0 else None

    @property
    def activities(self) -> int:
        return sum(r.account.activities for r in self.accounts)

    @property
    def median_net_new(self) -> Decimal | None:
        return _median(r.account.net_new for r in self.accounts)

    @property
    def median_velocity(self) -> Decimal | None:
        return _median(r.velocity for r in self.accounts if r.velocity is not None)

    @property
    def with_velocity(self) -> int:
        return sum(r.velocity is not None for r in self.accounts)

    @property
    def median_activities(self) -> Decimal | None:
        return _median(Decimal(r.account.activities) for r in self.accounts)


@dataclass(frozen=True)
class PilotReport:
    plan_id: int
    plan_name: str
    version: int
    rate: Decimal
    start: dt.date
    end: dt.date
    through: dt.date | None  # last day measured (None: the window has no data yet)
    days: int  # days measured (0 before the window has data)
    before_start: dt.date | None
    pilot: GroupResult
    comparison: GroupResult
    listed: tuple[str, ...]  # the plan's pilot external ids
    missing: tuple[str, ...]  # listed ids with no account
    method: str = METHOD

    @property
    def started(self) -> bool:
        return self.days > 0

    @property
    def before_end(self) -> dt.date | None:
        return self.start - dt.timedelta(days=1) if self.days else None

    @property
    def net_new_median_difference(self) -> Decimal | None:
        return _difference(self.pilot.median_net_new, self.comparison.median_net_new)

    @property
    def velocity_median_difference(self) -> Decimal | None:
        return _difference(self.pilot.median_velocity, self.comparison.median_velocity)

    @property
    def activities_median_difference(self) -> Decimal | None:
        return _difference(self.pilot.median_activities, self.comparison.median_activities)

    @property
    def growth_difference(self) -> Decimal | None:
        return _difference(self.pilot.growth, self.comparison.growth)


def _median(values: Iterable[Decimal]) -> Decimal | None:
    values = list(values)
    return statistics.median(values) if values else None


def _difference(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a - b


# --- Pure ---------------------------------------------------------------------------------


def comparable(rows: Sequence[PilotAccount]) -> list[PilotAccount]:
    """Accounts outside the pilot in a pilot account's segment whose 90-day size lies in
    [×0.5 the smallest, ×2 the largest] pilot account of that segment, and above $0."""
    bands: dict[str, tuple[Decimal, Decimal]] = {}
    for row in rows:
        if row.in_pilot:
            low, high = bands.get(row.segment, (row.size, row.size))
            bands[row.segment] = (min(low, row.size), max(high, row.size))
    return [
        row
        for row in rows
        if not row.in_pilot
        and row.segment in bands
        and row.size > 0
        and bands[row.segment][0] * SIZE_LOW <= row.size <= bands[row.segment][1] * SIZE_HIGH
    ]


def compare(rows: Sequence[PilotAccount], *, days: int) -> tuple[GroupResult, GroupResult]:
    """(pilot, comparison) over a window of ``days`` days measured."""

    def result(row: PilotAccount) -> AccountResult:
        velocity = compound_monthly_growth(row.run_rate_now, row.run_rate_then, days=days) if days else None
        return AccountResult(account=row, velocity=velocity)

    pilot = GroupResult(tuple(result(r) for r in rows if r.in_pilot))
    others = GroupResult(tuple(result(r) for r in comparable(rows)))
    return pilot, others


# --- Selectors ----------------------------------------------------------------------------

ACCOUNTS_SQL = """
WITH pilot AS (
    SELECT id, segment FROM accounts_account WHERE external_id = ANY(%(pilot)s)
), sums AS (
    SELECT account_id,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(size_start)s AND day < %(start)s), 0) AS size,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(before_start)s AND day < %(start)s), 0) AS before,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(start)s), 0) AS in_window,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(then_start)s AND day < %(start)s), 0) AS rr_then,
           COALESCE(SUM(revenue) FILTER (WHERE day >= %(now_start)s), 0) AS rr_now
    FROM usage_dailyrollup
    WHERE day >= %(first_day)s AND day <= %(through)s
      AND account_id IN (SELECT id FROM accounts_account WHERE segment IN (SELECT segment FROM pilot))
    GROUP BY account_id
), acts AS (
    SELECT account_id, COUNT(*) AS n
    FROM accounts_activity
    WHERE occurred_on >= %(start)s AND occurred_on <= %(through)s
    GROUP BY account_id
)
SELECT a.id, a.external_id, a.name, a.segment, a.id IN (SELECT id FROM pilot) AS in_pilot,
       COALESCE(s.size, 0), COALESCE(s.before, 0), COALESCE(s.in_window, 0),
       COALESCE(s.rr_then, 0), COALESCE(s.rr_now, 0), COALESCE(c.n, 0)
FROM accounts_account a
LEFT JOIN sums s ON s.account_id = a.id
LEFT JOIN acts c ON c.account_id = a.id
WHERE a.segment IN (SELECT segment FROM pilot) AND (a.id IN (SELECT id FROM pilot) OR s.size > 0)
ORDER BY a.name, a.id
"""


def pilot_plans() -> list[tuple[Plan, PlanVersion | None]]:
    """Every pilot plan with its latest version (two queries)."""
    plans = Plan.objects.filter(type=PlanType.PILOT).prefetch_related("versions").order_by("name")
    return [(plan, max(plan.versions.all(), key=lambda v: v.effective_from, default=None)) for plan in plans]


def latest_version(plan: Plan) -> PlanVersion | None:
    return plan.versions.order_by("-effective_from").first()


def pilot_accounts(pilot: Sequence[str], *, start: dt.date, through: dt.date, days: int) -> list[PilotAccount]:
    """The pilot accounts and every account of their segments with revenue in the 90 days
    before ``start``, with their window sums (one query)."""
    run_rate_days = min(RUN_RATE_DAYS, days)
    params = {
        "pilot": list(pilot),
        "start": start,
        "through": through,
        "size_start": start - dt.timedelta(days=SIZE_DAYS),
        "before_start": start - dt.timedelta(days=days),
        "then_start": start - dt.timedelta(days=run_rate_days),
        "now_start": through - dt.timedelta(days=run_rate_days - 1),
    }
    params["first_day"] = min(params["size_start"], params["before_start"], params["then_start"])
    with connection.cursor() as cursor:
        cursor.execute(ACCOUNTS_SQL, params)
        return [
            PilotAccount(
                account_id=row[0],
                external_id=row[1],
                name=row[2],
                segment=row[3],
                in_pilot=row[4],
                size=Decimal(row[5]),
                revenue_before=Decimal(row[6]),
                revenue_in_window=Decimal(row[7]),
                run_rate_then=Decimal(row[8]),
                run_rate_now=Decimal(row[9]),
                activities=int(row[10]),
            )
            for row in cursor.fetchall()
        ]


def pilot_report(plan: Plan, *, version: PlanVersion | None = None, as_of: dt.date | None = None) -> PilotReport | None:
    """The report of ``plan`` (its latest version unless given), measured to the window's
    end or ``as_of`` (default: the last day with usage), whichever is earlier. None when
    the plan has no version yet."""
    version = version or latest_version(plan)
    if version is None:
        return None
    params = version.parameters
    start = dt.date.fromisoformat(params["window"]["start"])
    end = dt.date.fromisoformat(params["window"]["end"])
    if as_of is None:
        as_of = DailyRollup.objects.filter(day__lte=end).aggregate(day=Max("day"))["day"]
    through = min(end, as_of) if as_of else None
    days = (through - start).days + 1 if through and through >= start else 0
    external_ids = list(params.get("accounts", []))
    rows = pilot_accounts(external_ids, start=start, through=through, days=days) if days else []
    if days:
        found = {r.external_id for r in rows if r.in_pilot}
        pilot, others = compare(rows, days=days)
    else:
        # Before the window has data there is nothing to measure; the pilot list still shows.
        found, pilot, others = set(), GroupResult(()), GroupResult(())
    return PilotReport(
        plan_id=plan.pk,
        plan_name=plan.name,
        version=version.version,
        rate=Decimal(str(params.get("rate", "0"))),
        start=start,
        end=end,
        through=through if days else None,
        days=days,
        before_start=start - dt.timedelta(days=days) if days else None,
        pilot=pilot,
        comparison=others,
        listed=tuple(external_ids),
        missing=tuple(x for x in external_ids if x not in found) if days else (),
    )
