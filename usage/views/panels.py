"""The account page's usage panels: metrics, the usage chart and alerts.

Each panel is its own URL that the account page (``accounts.views.account``) fetches with
``hx-get`` on load; without htmx the same URL is a page of its own. Every panel checks
access with ``account_for`` (404 outside the viewer's scope) and reads a constant number
of queries whatever the account's size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import account_for
from accounts.models import Account, Contract
from revops.clock import day_in_range
from usage.models import (
    ACTIVE_ALERT_STATES,
    AccountMetrics,
    Alert,
    AlertKind,
    AlertSettings,
    Band,
    DailyRollup,
    Gate,
    ProductRelease,
)
from usage.signals.alerts import revenue_at_risk_total
from usage.signals.charts import Release, Term, commit_pace, day_range, revenue_by_meter, usage_figure
from usage.signals.metrics import DEFINITIONS, SERIES_DAYS, Thresholds, detect_decline, subtree_ids
from usage.signals.selectors import metrics_as_of

CHART_DAYS = 180
CLOSED_ALERTS_SHOWN = 10


def _account(request: HttpRequest, external_id: str) -> Account:
    return account_for(request.user, external_id, on=timezone.localdate())


def _requested_day(request: HttpRequest) -> dt.date | None:
    """The ?as_of= day, or None (the newest snapshot) when absent, malformed or out of range."""
    try:
        day = dt.date.fromisoformat(request.GET.get("as_of", ""))
    except ValueError:
        return None
    return day if day_in_range(day) else None


def _panel(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    """The fragment for htmx, else the panel as a page of its own (the no-JS link)."""
    return render(request, f"{template}#panel" if request.htmx else template, context)


# --- Metrics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    definition: str
    value: str
    note: str = ""
    tone: str = ""  # "good" / "warn" / "bad" colours the value


def _money(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "−" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${abs(value):,.0f}"


def _pct(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    pct = value * 100
    sign = "−" if pct < 0 else ("+" if signed and pct > 0 else "")
    return f"{sign}{abs(pct):,.1f}%"


def _row(key: str, value: str, note: str = "", tone: str = "", label: str | None = None) -> MetricRow:
    default_label, definition = DEFINITIONS[key]
    return MetricRow(key, label or default_label, definition, value, note, tone)


BAND_TONES = {Band.EXPAND: "good", Band.ADOPT: "warn", Band.ESCALATE: "bad", Band.NONE: ""}


def ttfbe_unknown_reason(account: Account, m: AccountMetrics) -> str:
    """Why an account's time to first billable event is blank, in words."""
    from django.db import connection

    from usage.signals.metrics import usage_history_start

    land_on = (
        Contract.objects.filter(account_id__in=subtree_ids([account.pk]), start_on__lte=m.as_of)
        .order_by("start_on")
        .values_list("start_on", flat=True)
        .first()
    )
    if land_on is None:
        return "no contract had started"
    with connection.cursor() as cursor:
        complete_from = usage_history_start(cursor)
    if complete_from is None or land_on < complete_from:
        since = f"from {complete_from:%b %-d, %Y}" if complete_from else "not yet"
        return f"unknown: the contract started {land_on:%b %-d, %Y}, before usage history is complete ({since})"
    return "no billable usage yet"


def metric_rows(m: AccountMetrics, *, ttfbe_note: str = "") -> list[MetricRow]:
    """The snapshot's numbers as labelled, formatted rows, each with its definition."""
    band = Band(m.band)
    credit_note = f"runs out {m.credits_run_out_on.isoformat()}" if m.credits_run_out_on else ""
    return [
        _row("run_rate", _money(m.run_rate), f"{_money(m.revenue_30d)} in the last 30 days"),
        _row("committed_arr", _money(m.committed_arr)),
        _row("burn_rate", _pct(m.burn_rate), band.label, BAND_TONES[band]),
        _row("commit_pacing", _pct(m.commit_pacing), f"{_money(m.consumed_in_term)} consumed this term"),
        _row("projected_burn_at_term_end", _pct(m.projected_burn_at_term_end)),
        _row("consumption_rate", _pct(m.consumption_rate)),
        _row("credit_balance", _money(m.credit_balance), credit_note),
        _row("ttfbe_days", "—" if m.ttfbe_days is None else f"{m.ttfbe_days} days", ttfbe_note),
        _row(
            "mom_growth",
            _pct(m.mom_growth, signed=True),
            tone="" if m.mom_growth is None else ("good" if m.mom_growth >= 0 else "bad"),
        ),
        _row("expansion_velocity", _pct(m.expansion_velocity, signed=True), "per month, compounded"),
        _row(
            "net_new_arr",
            _money(m.net_new_arr, signed=True),
            tone="good" if m.net_new_arr > 0 else ("bad" if m.net_new_arr < 0 else ""),
        ),
        _row("meters_active", str(m.meters_active), f"{m.workloads} workloads seen"),
        _row("feature_adoption", _pct(m.feature_adoption)),
    ]


def health_rows(m: AccountMetrics, previous: AccountMetrics | None = None) -> list[dict]:
    """The score's components, each with how many points it moved since ``previous``."""
    before = {part["key"]: Decimal(str(part["points"])) for part in (previous.health_components if previous else [])}
    rows = []
    for part in m.health_components:
        points, most = Decimal(str(part["points"])), Decimal(part["max"])
        delta = points - before[part["key"]] if part["key"] in before else None
        rows.append(
            {
                **part,
                "points": points.normalize() if points == points.to_integral() else points,
                "share": int(points / most * 100) if most else 0,
                "delta": delta if delta else None,
            }
        )
    return rows


# How far back "why it moved" looks: the newest snapshot at least a week older.
HEALTH_COMPARE_DAYS = 7


def _health_tone(score: int) -> str:
    return "good" if score >= 70 else ("warn" if score >= 40 else "bad")


@require_GET
def metrics_panel(request: HttpRequest, external_id: str) -> HttpResponse:
    account = _account(request, external_id)
    snapshot = None
    requested = _requested_day(request)
    if requested is not None:
        snapshot = AccountMetrics.objects.filter(account=account, as_of=requested).first()
    if snapshot is None:
        as_of = metrics_as_of()
        if as_of is not None:
            snapshot = AccountMetrics.objects.filter(account=account, as_of=as_of).first()
    context = {"account": account, "snapshot": snapshot}
    if snapshot is not None:
        previous = (
            AccountMetrics.objects.filter(
                account=account, as_of__lte=snapshot.as_of - dt.timedelta(days=HEALTH_COMPARE_DAYS)
            )
            .order_by("-as_of")
            .only("as_of", "health_score", "health_components")
            .first()
        )
        context.update(
            previous=previous,
            health_change=snapshot.health_score - previous.health_score if previous else None,
            rows=metric_rows(
                snapshot, ttfbe_note=ttfbe_unknown_reason(account, snapshot) if snapshot.ttfbe_days is None else ""
            ),
            health=health_rows(snapshot, previous),
            health_tone=_health_tone(snapshot.health_score),
            health_definition=DEFINITIONS["health_score"][1],
            gate_label=Gate(snapshot.next_gate).label if snapshot.next_gate in Gate.values else snapshot.next_gate,
        )
    return _panel(request, "usage/panels/metrics.html", context)


# --- Usage chart --------------------------------------------------------------------------


def _decline_days(*, alert: Alert | None, totals: list[Decimal], days: list[dt.date], t: Thresholds) -> set[dt.date]:
    """Days flagged by the sudden-decline rule: the open alert's run (``details.days`` days
    ending on its last evaluation) and the rule re-run on the chart's own series."""
    flagged: set[dt.date] = set()
    if alert is not None:
        run = int((alert.details or {}).get("days") or 0)
        flagged |= {alert.last_seen_on - dt.timedelta(days=n) for n in range(run)}
    if len(totals) >= SERIES_DAYS:
        decline = detect_decline(totals[-SERIES_DAYS:], t)
        if decline is not None:
            flagged |= set(days[-decline.days :])
    return flagged


@require_GET
def usage_chart_panel(request: HttpRequest, external_id: str) -> HttpResponse:
    account = _account(request, external_id)
    end = _requested_day(request) or metrics_as_of() or timezone.localdate()
    days = day_range(end - dt.timedelta(days=CHART_DAYS - 1), end)
    # The chart shows what the metrics show: the account with every division below it.
    members = subtree_ids([account.pk])
    rows = list(
        DailyRollup.objects.filter(account_id__in=members, day__range=(days[0], days[-1]))
        .values_list("day", "meter__name", "meter_id", "meter__feature")
        .annotate(revenue=Sum("revenue"))
        .order_by("meter__key", "day")
    )
    by_meter = revenue_by_meter(((day, name, revenue) for day, name, _, _, revenue in rows), days)
    meter_ids = {meter_id for _, _, meter_id, _, _ in rows}
    features = sorted({feature for _, _, _, feature, _ in rows if feature})
    releases = [
        Release(r.released_on, r.name)
        for r in ProductRelease.objects.filter(released_on__range=(days[0], days[-1]))
        .filter(Q(meters__in=meter_ids) | Q(features__overlap=features))
        .distinct()
        .order_by("released_on")
    ]
    terms = [
        Term(*c)
        for c in Contract.objects.filter(
            account_id__in=members, start_on__lte=days[-1], end_on__gte=days[0]
        ).values_list("start_on", "end_on", "committed_arr")
    ]
    decline_alert = (
        Alert.objects.filter(account=account, kind=AlertKind.SUDDEN_DECLINE, state__in=ACTIVE_ALERT_STATES)
        .order_by("-last_seen_on")
        .first()
    )
    totals = [sum(values) for values in zip(*by_meter.values(), strict=True)] if by_meter else []
    t = Thresholds.from_settings(AlertSettings.current())
    anomalies = _decline_days(alert=decline_alert, totals=totals, days=days, t=t)
    figure = usage_figure(
        days=days, by_meter=by_meter, pace=commit_pace(terms, days), releases=releases, anomaly_days=anomalies
    )
    context = {
        "account": account,
        "figure": figure,
        "has_usage": bool(by_meter),
        "start": days[0],
        "end": days[-1],
        "releases": releases,
        "anomaly_days": sorted(d for d in anomalies if days[0] <= d <= days[-1]),
        "decline_alert": decline_alert,
        "chart_id": f"usage-figure-{account.pk}",
    }
    return _panel(request, "usage/panels/usage_chart.html", context)


# --- Alerts -------------------------------------------------------------------------------


@require_GET
def alerts_panel(request: HttpRequest, external_id: str) -> HttpResponse:
    account = _account(request, external_id)
    alerts = Alert.objects.filter(account=account).select_related("owner", "escalated_to")
    active = list(alerts.filter(state__in=ACTIVE_ALERT_STATES).order_by("-severity", "-revenue_at_risk", "opened_on"))
    closed = list(alerts.exclude(state__in=ACTIVE_ALERT_STATES).order_by("-updated_at", "-pk")[:CLOSED_ALERTS_SHOWN])
    context = {
        "account": account,
        "active": active,
        "closed": closed,
        "at_risk": revenue_at_risk_total(active),
    }
    return _panel(request, "usage/panels/alerts.html", context)


@require_GET
def usage_days(request: HttpRequest, external_id: str) -> HttpResponse:
    """The daily usage behind a figure: ``?through=YYYY-MM-DD&days=N`` (N ≤ 92, default the
    30 days of a run rate), the account's divisions included, with the run rate and burn
    those days make. Statement lines link here for the days their burn came from."""
    from revops.clock import yesterday_utc
    from revops.params import whole_number
    from usage.signals.selectors import MAX_USAGE_DAYS
    from usage.signals.selectors import usage_days as days_of

    account = _account(request, external_id)
    errors = []
    through = yesterday_utc()
    if request.GET.get("through"):
        try:
            through = dt.date.fromisoformat(request.GET["through"])
        except ValueError:
            errors.append(f"through: '{request.GET['through'][:40]}' is not a date (YYYY-MM-DD)")
        else:
            if not day_in_range(through):
                errors.append(f"through: {through} is outside the days revops covers")
                through = yesterday_utc()
    length = Thresholds().run_rate_days
    if request.GET.get("days"):
        asked = whole_number(request.GET["days"])
        if asked is None or not 1 <= asked <= MAX_USAGE_DAYS:
            errors.append(f"days: give a whole number of days from 1 to {MAX_USAGE_DAYS}")
        else:
            length = asked
    context = {"account": account, "window": days_of(account=account, last=through, length=length), "errors": errors}
    return render(request, "usage/usage_days.html", context, status=400 if errors else 200)
