"""Reads for the metrics pages and API: snapshots, the triage queue, the AE book."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, F, Max, Q, QuerySet, Sum

from revops.params import whole_number
from usage.ingestion.changes import rollups_version
from usage.models import ACTIVE_ALERT_STATES, AccountMetrics, Alert, AlertState, DailyRollup, MetricsRefresh
from usage.signals.alerts import RISK_KINDS


def metrics_as_of() -> dt.date | None:
    """The newest day with a metrics snapshot: what pages show unless asked for another day."""
    return (
        MetricsRefresh.objects.filter(alerts_evaluated=True).order_by("-as_of").values_list("as_of", flat=True).first()
        or AccountMetrics.objects.order_by("-as_of").values_list("as_of", flat=True).first()
    )


def snapshot_days(limit: int = 400) -> list[dt.date]:
    return list(AccountMetrics.objects.order_by("-as_of").values_list("as_of", flat=True).distinct()[:limit])


def account_snapshot(*, account_id: int, as_of: dt.date | None = None) -> AccountMetrics | None:
    """The account's snapshot on ``as_of`` (default: the newest it has)."""
    rows = AccountMetrics.objects.filter(account_id=account_id)
    if as_of is not None:
        rows = rows.filter(as_of=as_of)
    return rows.order_by("-as_of").first()


# --- Triage queue ------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    kind: str = ""
    segment: str = ""
    owner: str = "me"  # "me", "" (everyone in scope), "none" (unassigned) or a person id
    state: str = "active"  # "active" (open, acknowledged, snoozed), or one state


def alert_queue(*, alerts: QuerySet[Alert], viewer, filters: QueueFilters) -> QuerySet[Alert]:
    """The triage queue: most severe first, then the most revenue at risk."""
    rows = alerts
    if filters.state == "active":
        rows = rows.filter(state__in=ACTIVE_ALERT_STATES)
    elif filters.state in AlertState.values:
        rows = rows.filter(state=filters.state)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.segment:
        rows = rows.filter(account__segment=filters.segment)
    if filters.owner == "me":
        rows = rows.filter(Q(owner=viewer) | Q(escalated_to=viewer))
    elif filters.owner == "none":
        rows = rows.filter(owner__isnull=True)
    elif whole_number(filters.owner) is not None:
        rows = rows.filter(owner_id=whole_number(filters.owner))
    return rows.select_related("account", "owner__team", "escalated_to").order_by(
        "-severity", "-revenue_at_risk", "opened_on", "pk"
    )


def alert_counts(alerts: QuerySet[Alert]) -> dict[str, int]:
    """Active alerts by state, and their total revenue at risk (the queue's header)."""
    active = alerts.filter(state__in=ACTIVE_ALERT_STATES)
    totals = active.aggregate(
        open=Count("pk", filter=Q(state=AlertState.OPEN)),
        acknowledged=Count("pk", filter=Q(state=AlertState.ACKNOWLEDGED)),
        snoozed=Count("pk", filter=Q(state=AlertState.SNOOZED)),
    )
    totals["at_risk"] = revenue_at_risk_once(active)
    totals["active"] = totals["open"] + totals["acknowledged"] + totals["snoozed"]
    return totals


def revenue_at_risk_once(alerts: QuerySet[Alert]) -> Decimal:
    """``revenue_at_risk_total`` in the database: per account the largest revenue at risk
    among its risk alerts, summed over accounts (one narrow query)."""
    per_account = (
        alerts.filter(kind__in=RISK_KINDS)
        .order_by()
        .values("account_id")
        .annotate(largest=Max("revenue_at_risk"))
        .values_list("largest", flat=True)
    )
    return sum(per_account, Decimal(0))


# --- AE book -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BookFilters:
    band: str = ""
    segment: str = ""
    q: str = ""


def book_rows(
    *, people, as_of: dt.date, visible: QuerySet, filters: BookFilters, order: str = "-run_rate"
) -> QuerySet[AccountMetrics]:
    """A book on ``as_of``: the accounts ``people`` own in any role that day (and their
    divisions), or, with ``people=None``, every account in ``visible``; each with its
    metrics snapshot and its count of active alerts, sorted. A queryset: the page slices
    it, the totals aggregate it, the CSV streams it."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Coalesce

    from accounts.access import owned_accounts

    owned = visible if people is None else owned_accounts(people=people, on=as_of)
    open_alerts = (
        Alert.objects.filter(account_id=OuterRef("account_id"), state__in=ACTIVE_ALERT_STATES)
        .order_by()
        .values("account_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        AccountMetrics.objects.filter(as_of=as_of, account__in=owned)
        .filter(account__in=visible)
        .select_related("account")
        .annotate(open_alerts=Coalesce(Subquery(open_alerts), 0))
    )
    if filters.band:
        rows = rows.filter(band=filters.band)
    if filters.segment:
        rows = rows.filter(account__segment=filters.segment)
    if filters.q:
        rows = rows.filter(Q(account__name__icontains=filters.q) | Q(account__external_id__icontains=filters.q))
    field = order.lstrip("-")
    ordering = F(field).desc(nulls_last=True) if order.startswith("-") else F(field).asc(nulls_last=True)
    return rows.order_by(ordering, "account__name", "pk")


@dataclass(frozen=True)
class BookTotals:
    accounts: int
    run_rate: Decimal
    committed_arr: Decimal
    open_alerts: int

    @property
    def burn_rate(self) -> Decimal | None:
        return (self.run_rate / self.committed_arr).quantize(Decimal("0.0001")) if self.committed_arr else None


def book_totals(rows: QuerySet[AccountMetrics]) -> BookTotals:
    """Totals over the whole book (every page) from one narrow query. Money adds up
    top-level rows only: a division whose parent is also in the book is already inside the
    parent's rolled-up figures."""
    figures = list(rows.order_by().values_list("account_id", "account__parent_id", "run_rate", "committed_arr"))
    in_book = {account_id for account_id, _, _, _ in figures}
    top = [(run, committed) for _, parent, run, committed in figures if parent not in in_book]
    return BookTotals(
        accounts=len(figures),
        run_rate=sum((run for run, _ in top), Decimal(0)),
        committed_arr=sum((committed for _, committed in top), Decimal(0)),
        open_alerts=Alert.objects.filter(
            account_id__in=rows.order_by().values("account_id"), state__in=ACTIVE_ALERT_STATES
        ).count()
        if in_book
        else 0,
    )


# --- Company metrics ---------------------------------------------------------------------


def portfolio_days(limit: int = 400) -> list[dt.date]:
    from usage.models import PortfolioMetrics

    return list(PortfolioMetrics.objects.filter(segment="").order_by("-as_of").values_list("as_of", flat=True)[:limit])


def company_metrics(*, as_of: dt.date) -> dict:
    """The company and each segment on ``as_of``, and every snapshot day up to it for charts."""
    from accounts.models import Segment
    from usage.models import PortfolioMetrics
    from usage.signals.portfolio_charts import portfolio_figures

    today = list(PortfolioMetrics.objects.filter(as_of=as_of))
    for row in today:
        row.label = Segment(row.segment).label if row.segment in Segment.values else "Company"
    history = list(PortfolioMetrics.objects.filter(as_of__lte=as_of).order_by("as_of", "segment"))
    company = next((row for row in today if row.segment == ""), None)
    return {
        "company": company,
        "segments": sorted((row for row in today if row.segment), key=lambda row: row.segment),
        "figures": portfolio_figures(history),
    }


# --- The usage days behind a figure ---------------------------------------------------------


@dataclass
class UsageDay:
    day: dt.date
    by_meter: list[tuple[str, Decimal, Decimal]]  # meter name, quantity, revenue

    @property
    def revenue(self) -> Decimal:
        return sum((revenue for _, _, revenue in self.by_meter), Decimal(0))


@dataclass
class UsageDays:
    """The daily rollups of an account and its divisions over ``first`` … ``last``, with
    the run rate and burn they make on ``last`` (the definitions of ``metrics.burn_at``)."""

    first: dt.date
    last: dt.date
    days: list[UsageDay]
    accounts: int  # the account and its divisions
    run_rate: Decimal | None  # only for a window of the run-rate length
    committed_arr: Decimal | None
    burn_rate: Decimal | None

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def revenue(self) -> Decimal:
        return sum((d.revenue for d in self.days), Decimal(0))


MAX_USAGE_DAYS = 92


def usage_days(*, account, last: dt.date, length: int) -> UsageDays:
    """``length`` days ending ``last`` (every day listed, empty ones too). Three queries."""
    from usage.models import DailyRollup
    from usage.signals.metrics import Thresholds, burn_at, subtree_ids

    first = last - dt.timedelta(days=length - 1)
    ids = subtree_ids([account.pk])
    rows: dict[dt.date, list] = {first + dt.timedelta(days=k): [] for k in range(length)}
    for day, meter, quantity, revenue in (
        DailyRollup.objects.filter(account_id__in=ids, day__range=(first, last))
        .values_list("day", "meter__name")
        .annotate(quantity=Sum("quantity"), revenue=Sum("revenue"))
        .order_by("day", "meter__name")
        .values_list("day", "meter__name", "quantity", "revenue")
    ):
        rows[day].append((meter, quantity, revenue))
    run_rate = committed = burn = None
    if length == Thresholds().run_rate_days:
        point = burn_at([(account.pk, last)]).get((account.pk, last))
        if point is not None:
            run_rate, committed, burn = point.run_rate, point.committed_arr or None, point.burn_rate
    days = [UsageDay(day, meters) for day, meters in rows.items()]
    return UsageDays(first, last, days, len(ids), run_rate, committed, burn)


# --- Meter trends (the leader's home) ------------------------------------------------------

METER_TRENDS_CACHE_S = 24 * 3600


@dataclass(frozen=True)
class MeterTrend:
    meter_id: int
    recent: Decimal  # priced revenue of the 30 days to as_of, all accounts (divisions included)
    before: Decimal  # the 30 days before those
    accounts: int  # accounts with usage of the meter in the recent 30 days


def meter_trends(*, as_of: dt.date) -> list[MeterTrend]:
    """Each meter's revenue over the 30 days to ``as_of`` and the 30 before, and how many
    accounts used it. It sums every rollup of 60 days (7 M rows at 20,000 accounts, ~4 s),
    so the result is kept until a rollup of those months changes (the refresh computes it
    once a night, after the snapshots)."""
    first = as_of - dt.timedelta(days=59)
    key = f"usage:meter-trends:v1:{as_of.isoformat()}:{rollups_version(first=first, last=as_of)}"
    found = cache.get(key)
    if found is not None:
        return found
    recent = Q(day__gt=as_of - dt.timedelta(days=30))
    rows = (
        DailyRollup.objects.filter(day__gte=first, day__lte=as_of)
        .values("meter_id")
        .annotate(
            recent=Sum("revenue", filter=recent),
            before=Sum("revenue", filter=~recent),
            accounts=Count("account_id", filter=recent, distinct=True),
        )
        .order_by("meter_id")
    )
    zero = Decimal(0)
    trends = [
        MeterTrend(row["meter_id"], row["recent"] or zero, row["before"] or zero, row["accounts"]) for row in rows
    ]
    cache.set(key, trends, timeout=METER_TRENDS_CACHE_S)
    return trends
