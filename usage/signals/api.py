"""Read API over the shared metrics and alerts: the pages' numbers and permission rules.

GET /api/v1/accounts/{external_id}/metrics, /api/v1/metrics and /api/v1/alerts answer a
logged-in browser session or a Bearer key with the "read" scope. A key reads with the
permissions of the person who created it, so it never sees more than that person's
pages do; an account outside that scope is a 404, exactly like an unknown one.

Money is a decimal string with 2 places, ratios a decimal string fraction with 4 places
("0.3333" = 33.33%); missing values are null. Every number comes from ``usage.signals.metrics``
(live) or the snapshot the nightly refresh wrote with it (``usage.signals.services``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from django.db.models import Count, Max, Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.security import django_auth

from accounts.access import ALL_ACCOUNTS_ROLES, accounts_visible_to
from accounts.models import Account, Segment
from revops.api_auth import ApiError, ReadKeyAuth
from revops.clock import EARLIEST_DAY, LATEST_DAY, day_in_range, today_utc
from usage.access import alerts_visible_to
from usage.models import ACTIVE_ALERT_STATES, AccountMetrics, Alert, AlertKind, AlertState, PortfolioMetrics, Severity
from usage.signals import metrics
from usage.signals.alerts import RISK_KINDS
from usage.signals.selectors import metrics_as_of

router = Router(tags=["metrics"], auth=[ReadKeyAuth(), django_auth])

ERRORS = {400: ApiError, 401: ApiError, 403: ApiError, 429: ApiError}
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_QUERY_INT = 1_000_000_000
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _doc(key: str) -> str:
    label, text = metrics.DEFINITIONS[key]
    return f"{label}: {text}"


RATIO_NOTE = " A fraction with 4 decimal places as a string (0.3333 = 33.33%); null when undefined."
MONEY_NOTE = " Money, 2 decimal places, as a string."


def _ratio_field(key: str):
    return Field(None, description=_doc(key) + RATIO_NOTE)


def _money_field(key: str):
    return Field(..., description=_doc(key) + MONEY_NOTE)


# --- Schemas ---------------------------------------------------------------------------


class HealthComponentOut(Schema):
    key: str = Field(..., description="burn, trend, anomalies, recency or pacing.")
    label: str
    points: str = Field(..., description="Points earned, one decimal place, as a string.")
    max: int = Field(..., description="The most points this component can give.")
    why: str = Field(..., description="The inputs behind the points, in words.")


class AccountMetricsOut(Schema):
    account: str = Field(..., description="The account's external id.")
    account_name: str
    as_of: dt.date = Field(..., description="The day the metrics are as of (UTC).")
    source: Literal["snapshot", "live"] = Field(
        ..., description="snapshot: the nightly refresh's stored row for that day; live: computed for this request."
    )
    run_rate: str = _money_field("run_rate")
    committed_arr: str = _money_field("committed_arr")
    burn_rate: str | None = _ratio_field("burn_rate")
    band: Literal["expand", "adopt", "escalate", "none"] = Field(
        ..., description=_doc("band") + " none: no commitment in force."
    )
    commit_pacing: str | None = _ratio_field("commit_pacing")
    projected_burn_at_term_end: str | None = _ratio_field("projected_burn_at_term_end")
    consumption_rate: str | None = _ratio_field("consumption_rate")
    credit_balance: str | None = Field(
        None, description=_doc("credit_balance") + MONEY_NOTE + " Null without a prepaid-credit contract."
    )
    credits_run_out_on: dt.date | None = Field(None, description=_doc("credits_run_out_on"))
    ttfbe_days: int | None = Field(None, description=_doc("ttfbe_days") + " Null when unknown.")
    mom_growth: str | None = _ratio_field("mom_growth")
    expansion_velocity: str | None = _ratio_field("expansion_velocity")
    net_new_arr: str = _money_field("net_new_arr")
    health_score: int = Field(..., description=_doc("health_score"))
    health_components: list[HealthComponentOut] = Field(..., description="The five parts of the health score.")
    open_alerts: int = Field(
        ...,
        description="Active alerts (open, acknowledged or snoozed) on this account now, as its page's Alerts "
        "panel lists them (its divisions' alerts are on theirs).",
    )
    revenue_at_risk: str = Field(
        ...,
        description="The largest revenue at risk among this account's active risk alerts (an account counts "
        "once, never the sum of its alerts)." + MONEY_NOTE,
    )


class RealizationOut(Schema):
    committed: str = Field(..., description="Commitment pro-rated over the trailing 365 days." + MONEY_NOTE)
    realized: str = Field(..., description="Revenue consumed by the committed accounts in that time." + MONEY_NOTE)
    gap: str = Field(..., description="committed − realized." + MONEY_NOTE)
    rate: str | None = Field(None, description="realized ÷ committed." + RATIO_NOTE)


class PortfolioOut(Schema):
    as_of: dt.date
    segment: str = Field(..., description='The segment asked for; "" for every segment.')
    scope: Literal["company", "segment", "my accounts"] = Field(
        ...,
        description="company / segment: every account (leaders, finance, admins, product); "
        "my accounts: only the accounts the caller may see (their book and their teams').",
    )
    source: Literal["snapshot", "live"]
    accounts: int = Field(..., description="Accounts counted (each once; divisions are their own accounts).")
    run_rate: str = _money_field("run_rate")
    committed_arr: str = _money_field("committed_arr")
    burn_rate: str | None = _ratio_field("burn_rate")
    nrr: str | None = _ratio_field("nrr")
    gur: str | None = _ratio_field("gur")
    median_ttfbe_days: str | None = Field(
        None, description=_doc("median_ttfbe_days") + " One decimal place, as a string; null without data."
    )
    expansion_velocity: str | None = _ratio_field("expansion_velocity")
    consumption_rate: str | None = _ratio_field("consumption_rate")
    net_new_arr: str = _money_field("net_new_arr")
    realization: RealizationOut = Field(..., description=_doc("realization"))


class AlertOut(Schema):
    id: int
    kind: str = Field(..., description="One of: " + ", ".join(AlertKind.values))
    severity: str = Field(..., description="Critical, High, Medium or Low.")
    state: str = Field(..., description="One of: " + ", ".join(AlertState.values))
    account: str = Field(..., description="The account's external id.")
    owner: str | None = Field(None, description="The owner's email (the account's CSM), or null.")
    escalated_to: str | None = Field(None, description="Email of the land AE it was escalated to, or null.")
    revenue_at_risk: str = Field(..., description="Annualized revenue at risk." + MONEY_NOTE)
    gate: str | None = Field(None, description="The comp gate it threatens: checkpoint_90, clawback_12m or null.")
    gate_on: dt.date | None
    snoozed_until: dt.date | None
    opened_at: dt.datetime
    opened_on: dt.date = Field(..., description="The metrics day the condition was first found.")
    last_seen_on: dt.date = Field(..., description="The last metrics day the condition was found.")


class AlertPage(Schema):
    count: int = Field(..., description="Alerts matching the filters (all pages).")
    results: list[AlertOut]


# --- Helpers ---------------------------------------------------------------------------


def _ratio(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(metrics.RATIO, rounding=ROUND_HALF_UP))


def _money(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(metrics.CENT, rounding=ROUND_HALF_UP))


def _as_of(value: str | None) -> dt.date:
    """The requested day: YYYY-MM-DD, not in the future; default the newest snapshot day."""
    today = today_utc()
    if not value:
        # Without any snapshot yet: the last complete day, as the nightly refresh would.
        return metrics_as_of() or today - dt.timedelta(days=1)
    try:
        # fromisoformat alone would also take 20261121 and 2026-W47-6.
        day = dt.date.fromisoformat(value) if ISO_DAY.fullmatch(value) else None
    except ValueError:
        day = None
    if day is None:
        raise HttpError(400, f"as_of must be a date as YYYY-MM-DD, not {value[:40]!r}.")
    if day > today:
        raise HttpError(400, f"as_of {day} is in the future; metrics exist up to today ({today}).")
    if not day_in_range(day):
        raise HttpError(400, f"as_of {day} is outside the days revops covers ({EARLIEST_DAY} to {LATEST_DAY}).")
    return day


def _choice(name: str, value: str | None, allowed: list[str]) -> str:
    if value is None or value == "":
        return ""
    if value not in allowed:
        raise HttpError(400, f"{name} must be one of {', '.join(allowed)}; not {value[:40]!r}.")
    return value


def _int(name: str, value: str | None, *, default: int, low: int, high: int | None = None) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    high = MAX_QUERY_INT if high is None else high  # beyond a PostgreSQL bigint nothing is found anyway
    if number is None or number < low or number > high:
        bounds = f"from {low} to {high}"
        raise HttpError(400, f"{name} must be a whole number {bounds}; not {value[:40]!r}.")
    return number


# --- 1. One account ---------------------------------------------------------------------


def _account_body(row, components: list[dict], account: Account, source: str) -> dict:
    """The response from a snapshot row or a live ``metrics.Metrics``: same attribute names."""
    return {
        "account": account.external_id,
        "account_name": account.name,
        "as_of": row.as_of,
        "source": source,
        "run_rate": _money(row.run_rate),
        "committed_arr": _money(row.committed_arr),
        "burn_rate": _ratio(row.burn_rate),
        "band": row.band,
        "commit_pacing": _ratio(row.commit_pacing),
        "projected_burn_at_term_end": _ratio(row.projected_burn_at_term_end),
        "consumption_rate": _ratio(row.consumption_rate),
        "credit_balance": _money(row.credit_balance),
        "credits_run_out_on": row.credits_run_out_on,
        "ttfbe_days": row.ttfbe_days,
        "mom_growth": _ratio(row.mom_growth),
        "expansion_velocity": _ratio(row.expansion_velocity),
        "net_new_arr": _money(row.net_new_arr),
        "health_score": row.health_score,
        "health_components": components,
        **_alert_summary(account),
    }


def _alert_summary(account: Account) -> dict:
    """One query: the account's active alerts and the largest revenue at risk among its risk
    alerts (for one account, ``revenue_at_risk_once`` is that largest figure)."""
    summary = Alert.objects.filter(account=account, state__in=ACTIVE_ALERT_STATES).aggregate(
        n=Count("pk"), at_risk=Max("revenue_at_risk", filter=Q(kind__in=RISK_KINDS))
    )
    return {"open_alerts": summary["n"], "revenue_at_risk": _money(summary["at_risk"] or Decimal("0.00"))}


@router.get(
    "/accounts/{external_id}/metrics",
    response={200: AccountMetricsOut, 404: ApiError, **ERRORS},
    summary="One account's shared metrics",
    description=(
        "The account's metrics as of `as_of` (default: the newest snapshot day), its whole hierarchy "
        "rolled up. Read from the nightly snapshot for that day (`source: snapshot`), else computed "
        "for this request with the same definitions (`source: live`). An account outside the caller's "
        "scope is a 404, like an unknown one."
    ),
)
def account_metrics(
    request: HttpRequest,
    external_id: str,
    as_of: str | None = Query(None, description="YYYY-MM-DD, not in the future. Default: the newest snapshot day."),
):
    person = request.auth
    day = _as_of(as_of)
    if "\x00" in external_id:  # PostgreSQL refuses NUL in text: no account can have one
        raise HttpError(404, "No such account.")
    visible = accounts_visible_to(person, on=today_utc())
    snapshot = (
        AccountMetrics.objects.select_related("account")
        .filter(as_of=day, account__external_id=external_id, account__in=visible)
        .first()
    )
    if snapshot is not None:
        return _account_body(snapshot, snapshot.health_components, snapshot.account, "snapshot")
    account = visible.filter(external_id=external_id).first()
    if account is None:
        raise HttpError(404, "No such account.")
    live = metrics.account_metrics(as_of=day, accounts=[account.id])[account.id]
    return _account_body(live, [c.as_dict() for c in live.health_components], account, "live")


# --- 2. Portfolio -----------------------------------------------------------------------


def _portfolio_live(*, as_of: dt.date, account_ids: list[int] | None) -> metrics.Portfolio:
    """Live portfolio over exactly ``account_ids`` (every account when None).

    A segment's accounts are summed on their own rows, as the nightly refresh does for the
    stored per-segment rows: ``portfolio_metrics`` would add divisions that sit in another
    segment. A person's visible accounts already include every division below them.
    """
    if account_ids is None:
        return metrics.portfolio_metrics(as_of=as_of)
    from usage.models import AlertSettings

    t = metrics.Thresholds.from_settings(AlertSettings.current())
    inputs = metrics.account_inputs(as_of=as_of, accounts=account_ids, rollup=False, thresholds=t)
    return metrics.portfolio(inputs.values(), as_of=as_of, t=t)


def _portfolio_body(p, *, segment: str, scope: str, source: str) -> dict:
    committed, realized = p.realization_committed, p.realization_realized
    return {
        "as_of": p.as_of,
        "segment": segment,
        "scope": scope,
        "source": source,
        "accounts": p.accounts,
        "run_rate": _money(p.run_rate),
        "committed_arr": _money(p.committed_arr),
        "burn_rate": _ratio(p.burn_rate),
        "nrr": _ratio(p.nrr),
        "gur": _ratio(p.gur),
        "median_ttfbe_days": None
        if p.median_ttfbe_days is None
        else str(Decimal(p.median_ttfbe_days).quantize(Decimal("0.1"))),
        "expansion_velocity": _ratio(p.expansion_velocity),
        "consumption_rate": _ratio(p.consumption_rate),
        "net_new_arr": _money(p.net_new_arr),
        "realization": {
            "committed": _money(committed),
            "realized": _money(realized),
            "gap": _money(committed - realized),
            "rate": _ratio(metrics.ratio(realized, committed)),
        },
    }


@router.get(
    "/metrics",
    response={200: PortfolioOut, **ERRORS},
    summary="Portfolio metrics: the company, a segment, or my accounts",
    description=(
        "Leaders, finance, admins and product managers get the company (no `segment`) or one segment, "
        "from the nightly snapshot for `as_of` when there is one, else computed live. Everyone else "
        "gets the accounts they may see (their book and their teams'), computed live (`scope: my accounts`), "
        "optionally only those in `segment`."
    ),
)
def portfolio_metrics(
    request: HttpRequest,
    as_of: str | None = Query(None, description="YYYY-MM-DD, not in the future. Default: the newest snapshot day."),
    segment: str | None = Query(None, description="One of: " + ", ".join(Segment.values) + ". Empty: all."),
):
    person = request.auth
    day = _as_of(as_of)
    segment = _choice("segment", segment, list(Segment.values))
    if person.role in ALL_ACCOUNTS_ROLES:
        scope = "segment" if segment else "company"
        stored = PortfolioMetrics.objects.filter(as_of=day, segment=segment).first()
        if stored is not None:
            return _portfolio_body(stored, segment=segment, scope=scope, source="snapshot")
        ids = list(Account.objects.filter(segment=segment).values_list("id", flat=True)) if segment else None
    else:
        scope = "my accounts"
        visible = accounts_visible_to(person, on=today_utc())
        if segment:
            visible = visible.filter(segment=segment)
        ids = list(visible.values_list("id", flat=True))
    live = _portfolio_live(as_of=day, account_ids=ids)
    return _portfolio_body(live, segment=segment, scope=scope, source="live")


# --- 3. Alerts --------------------------------------------------------------------------

STATE_FILTERS = ["active", "all", *AlertState.values]


@router.get(
    "/alerts",
    response={200: AlertPage, **ERRORS},
    summary="Alerts the caller may see",
    description=(
        "Most severe first, then the most revenue at risk (the triage queue's order). Company-wide roles "
        "see every alert; others those owned by or escalated to them or their teams, and those on the "
        "accounts they may see. Without `state`, the active ones (open, acknowledged or snoozed), "
        "as the triage queue shows them; `state=all` lists every state."
    ),
)
def alerts(
    request: HttpRequest,
    state: str | None = Query(
        None,
        description="active (the default: open, acknowledged or snoozed), all, or one state: "
        + ", ".join(AlertState.values),
    ),
    kind: str | None = Query(None, description="One of: " + ", ".join(AlertKind.values)),
    account: str | None = Query(None, description="An account's external id."),
    limit: str | None = Query(None, description=f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT})."),
    offset: str | None = Query(None, description="Alerts to skip, ≥ 0 (default 0)."),
):
    person = request.auth
    state = _choice("state", state, STATE_FILTERS) or "active"
    kind = _choice("kind", kind, list(AlertKind.values))
    size = _int("limit", limit, default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    start = _int("offset", offset, default=0, low=0)
    rows = alerts_visible_to(person, on=today_utc())
    if state == "active":
        rows = rows.filter(state__in=ACTIVE_ALERT_STATES)
    elif state != "all":
        rows = rows.filter(state=state)
    if kind:
        rows = rows.filter(kind=kind)
    if account and "\x00" in account:
        raise HttpError(400, "account must be an account's external id; it cannot contain NUL.")
    if account:
        rows = rows.filter(account__external_id=account)
    count = rows.count()
    page = rows.select_related("account", "owner", "escalated_to").order_by(
        "-severity", "-revenue_at_risk", "opened_on", "pk"
    )[start : start + size]
    return {"count": count, "results": [_alert_body(alert) for alert in page]}


def _alert_body(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "severity": Severity(alert.severity).label,
        "state": alert.state,
        "account": alert.account.external_id,
        "owner": alert.owner.email if alert.owner else None,
        "escalated_to": alert.escalated_to.email if alert.escalated_to else None,
        "revenue_at_risk": _money(alert.revenue_at_risk),
        "gate": alert.gate or None,
        "gate_on": alert.gate_on,
        "snoozed_until": alert.snoozed_until,
        "opened_at": alert.opened_at,
        "opened_on": alert.opened_on,
        "last_seen_on": alert.last_seen_on,
    }
