"""Usage's panels on the home page (``revops.home``) and the expansion opportunities list.

Every panel shows the viewer's own scope only: the alerts they may see, the book they own,
the data they manage.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import accounts_visible_to, owned_accounts
from accounts.models import Segment
from revops.access import people_in_scope, sees_company
from revops.clock import today_utc
from revops.home import require_panel
from revops.models import Role, User
from revops.params import whole_number
from usage.access import alerts_visible_to
from usage.models import ACTIVE_ALERT_STATES, AccountMetrics, AlertSettings, Meter
from usage.signals import home as panels
from usage.signals import selectors

TEMPLATE = "usage/home.html"
OPPORTUNITIES_PAGE = 50
OPPORTUNITY_SORTS = {
    "name": "account__name",
    "excess": "excess",
    "burn": "burn_rate",
    "run_rate": "run_rate",
    "credits": "credits_run_out_on",
    "renewal": "renewal_on",
}


def _my_queue(request: HttpRequest, today: dt.date):
    """A CSM's own queue (owned or escalated to them); everyone else all they may see."""
    visible = alerts_visible_to(request.user, on=today)
    if request.user.role == Role.CSM:
        return visible.filter(Q(owner=request.user) | Q(escalated_to=request.user))
    return visible


def _my_book(request: HttpRequest, as_of: dt.date):
    return AccountMetrics.objects.filter(
        as_of=as_of,
        account__in=owned_accounts(people=[request.user.pk], on=as_of),
    ).filter(account__in=accounts_visible_to(request.user, on=as_of))


@require_GET
def home_triage(request: HttpRequest) -> HttpResponse:
    require_panel(request, "triage")
    today = today_utc()
    context = {"triage": panels.triage(queue=_my_queue(request, today), as_of=selectors.metrics_as_of(), today=today)}
    context["mine"] = request.user.role == Role.CSM
    return render(request, f"{TEMPLATE}#triage", context)


@require_GET
def home_gates(request: HttpRequest) -> HttpResponse:
    require_panel(request, "gates")
    as_of = selectors.metrics_as_of()
    floor = AlertSettings.current().payout_floor
    risks = panels.under_floor_before_gate(book=_my_book(request, as_of), floor=floor, as_of=as_of) if as_of else []
    context = {
        "risks": risks[: panels.SHOWN],
        "count": len(risks),
        "shortfall": sum((r.shortfall for r in risks), start=panels.ZERO),
        "floor": floor,
        "as_of": as_of,
        "horizon": panels.GATE_HORIZON_DAYS,
    }
    return render(request, f"{TEMPLATE}#gates", context)


def _opportunity_scope(request: HttpRequest, as_of: dt.date):
    """AEs and CSMs: their own book; managers their teams'; company roles everything."""
    if sees_company(request.user) or request.user.role == Role.PRODUCT:
        return accounts_visible_to(request.user, on=as_of)
    return owned_accounts(people=people_in_scope(request.user), on=as_of)


@require_GET
def home_opportunities(request: HttpRequest) -> HttpResponse:
    require_panel(request, "opportunities")
    as_of = selectors.metrics_as_of()
    rows = panels.opportunities(visible=_opportunity_scope(request, as_of), as_of=as_of) if as_of else None
    # The count and the total excess in one pass over the company's metrics (not two).
    summary = (
        rows.order_by().aggregate(
            count=Count("pk"),
            excess=Sum(F("run_rate") - F("committed_arr"), filter=Q(run_rate__gt=F("committed_arr"))),
        )
        if rows is not None
        else {"count": 0, "excess": None}
    )
    context = {
        "rows": list(rows[: panels.SHOWN]) if rows is not None else [],
        "count": summary["count"],
        "excess": summary["excess"] or panels.ZERO,
        "as_of": as_of,
    }
    return render(request, f"{TEMPLATE}#opportunities", context)


@require_GET
def home_data(request: HttpRequest) -> HttpResponse:
    require_panel(request, "data")
    health = panels.data_health(since=timezone.now() - dt.timedelta(days=30))
    return render(request, f"{TEMPLATE}#data", {"health": health})


@require_GET
def home_team(request: HttpRequest) -> HttpResponse:
    require_panel(request, "team")
    as_of = selectors.metrics_as_of()
    context: dict = {"as_of": as_of}
    if as_of is not None:
        visible = accounts_visible_to(request.user, on=as_of)
        context["totals"] = selectors.book_totals(AccountMetrics.objects.filter(as_of=as_of, account__in=visible))
        active = alerts_visible_to(request.user, on=today_utc()).filter(state__in=ACTIVE_ALERT_STATES)
        context["at_risk"] = selectors.revenue_at_risk_once(active)
        context["up"], context["down"], context["since"] = panels.movers(visible=visible, as_of=as_of)
    return render(request, f"{TEMPLATE}#team", context)


@require_GET
def home_meters(request: HttpRequest) -> HttpResponse:
    """Each meter's revenue over the last 30 days against the 30 before, and how many
    accounts used it: what is trending."""
    require_panel(request, "meters")
    as_of = selectors.metrics_as_of()
    rows = []
    if as_of is not None:
        meters = {m.pk: m for m in Meter.objects.all()}
        for trend in selectors.meter_trends(as_of=as_of):
            meter = meters.get(trend.meter_id)
            if meter is None:
                continue
            change = (trend.recent / trend.before - 1) if trend.before else None
            rows.append({"meter": meter, "recent": trend.recent, "change": change, "accounts": trend.accounts})
        rows.sort(key=lambda r: (-r["recent"], r["meter"].key))
    return render(request, f"{TEMPLATE}#meters", {"rows": rows, "as_of": as_of})


# --- Expansion opportunities ---------------------------------------------------------------


@require_GET
def opportunities(request: HttpRequest) -> HttpResponse:
    """Accounts at or over their commitment, or whose credits run out before the contract
    ends: renewal and expansion conversations (never counted as revenue at risk)."""
    as_of = selectors.metrics_as_of()
    sort = request.GET.get("sort", "-excess")
    if sort.lstrip("-") not in OPPORTUNITY_SORTS:
        sort = "-excess"
    segment = request.GET.get("segment", "")
    segment = segment if segment in Segment.values else ""
    page_number = request.GET.get("page", "1")
    page = max(1, min(whole_number(page_number) or 1, 10_000))
    rows, count, team = [], 0, {}
    if as_of is not None:
        order = ("-" if sort.startswith("-") else "") + OPPORTUNITY_SORTS[sort.lstrip("-")]
        queryset = panels.opportunities(visible=_opportunity_scope(request, as_of), as_of=as_of, order=order)
        if segment:
            queryset = queryset.filter(account__segment=segment)
        count = queryset.count()
        rows = list(queryset[(page - 1) * OPPORTUNITIES_PAGE : page * OPPORTUNITIES_PAGE])
        team = panels.owners_by_account([r.account_id for r in rows], on=as_of)
    for row in rows:
        row.team = team.get(row.account_id, {"ae": [], "csm": []})
    context = {
        "rows": rows,
        "count": count,
        "as_of": as_of,
        "sort": sort,
        "segment": segment,
        "segments": Segment.choices,
        "page": page,
        "first_row": (page - 1) * OPPORTUNITIES_PAGE + 1,
        "last_row": (page - 1) * OPPORTUNITIES_PAGE + len(rows),
        "has_next": count > page * OPPORTUNITIES_PAGE,
    }
    template = "usage/opportunities.html#opportunity-table" if request.htmx else "usage/opportunities.html"
    return render(request, template, context)


def reps_in_scope(user: User):
    """AEs and CSMs whose books ``user`` may read (for the book's per-rep roll-up)."""
    return list(people_in_scope(user).filter(role__in=[Role.AE, Role.CSM]).order_by("name"))
