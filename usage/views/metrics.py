"""Pages over the shared metrics: the CSM triage queue, the AE book, company metrics.

Views validate input, fetch through a permission-checked helper (``usage.access``,
``accounts.access``), call one selector or service and render; one template serves a
page and its htmx fragments (``template.html#partial``).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import accounts_visible_to
from accounts.models import Segment
from revops.access import people_directory, people_in_scope, sees_company, teams_managed_by
from revops.clock import today_utc
from revops.errors import ApplicationError
from revops.models import Role, User
from revops.params import whole_number
from revops.tabular import spreadsheet_safe
from usage.access import alert_for, alerts_visible_to, can_act_on_alert, can_change_alert_settings
from usage.forms import AlertSettingsForm, UsageHistoryForm
from usage.models import AccountMetrics, AlertKind, AlertSettings, AlertState, UsageHistory
from usage.signals import selectors
from usage.signals.metrics import DEFINITIONS
from usage.signals.services import alert_act

# The most severe 50 first: a triage list, not a report (the rest are a page away).
QUEUE_PAGE = 50


def _whole(value: str) -> int | None:
    """``revops.params.whole_number``: "²" passes ``str.isdigit`` but not ``int`` (a 500 on
    a posted alert id, owner or assignee, and on the book a saved view opens with ``person=²``)."""
    return whole_number(value)


def _queue_filters(request: HttpRequest, params: QueryDict) -> selectors.QueueFilters:
    default_owner = "me" if request.user.role == Role.CSM else ""
    kind = params.get("kind", "")
    segment = params.get("segment", "")
    state = params.get("state", "active")
    owner = params.get("owner", default_owner)
    return selectors.QueueFilters(
        kind=kind if kind in AlertKind.values else "",
        segment=segment if segment in Segment.values else "",
        owner=owner if owner in ("me", "", "none") or _whole(owner) is not None else default_owner,
        state=state if state == "active" or state in AlertState.values else "active",
    )


def _queue_context(request: HttpRequest, filters: selectors.QueueFilters) -> dict:
    today = today_utc()
    visible = alerts_visible_to(request.user, on=today)
    page = max(1, min(_whole(request.GET.get("page", "")) or 1, 1000))
    start = (page - 1) * QUEUE_PAGE
    queue = selectors.alert_queue(alerts=visible, viewer=request.user, filters=filters)
    rows = list(queue[start : start + QUEUE_PAGE + 1])
    owners = User.objects.filter(pk__in=people_in_scope(request.user)).filter(role__in=[Role.CSM, Role.LEADER])
    return {
        "alerts": [(alert, can_act_on_alert(request.user, alert)) for alert in rows[:QUEUE_PAGE]],
        "page": page,
        "first_row": start + 1,
        "last_row": start + len(rows[:QUEUE_PAGE]),
        "has_next": len(rows) > QUEUE_PAGE,
        "counts": selectors.alert_counts(visible.filter(pk__in=_scope_ids(request, visible, filters))),
        "filters": filters,
        "query": _filter_query(filters),
        "kinds": AlertKind.choices,
        "segments": Segment.choices,
        "states": [("active", "Active (open, acknowledged, snoozed)"), *AlertState.choices],
        "owners": owners.order_by("name"),
        "assignees": people_directory(request.user).filter(role=Role.CSM).order_by("name"),
        "today": today,
        "as_of": selectors.metrics_as_of(),
    }


def _scope_ids(request: HttpRequest, visible, filters: selectors.QueueFilters):
    """The counts follow the owner filter (my queue vs my teams') but not kind/state."""
    scope = selectors.QueueFilters(owner=filters.owner, state="active", segment=filters.segment)
    return selectors.alert_queue(alerts=visible, viewer=request.user, filters=scope).values("pk")


def _filter_query(filters: selectors.QueueFilters) -> str:
    query = QueryDict(mutable=True)
    for name in ("kind", "segment", "owner", "state"):
        query[name] = getattr(filters, name)
    return query.urlencode()


@require_GET
def alerts(request: HttpRequest) -> HttpResponse:
    filters = _queue_filters(request, request.GET)
    template = "usage/alerts.html#alert-queue" if request.htmx else "usage/alerts.html"
    return render(request, template, _queue_context(request, filters))


@require_GET
def alert_history(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = alert_for(request.user, alert_id, on=today_utc())
    events = alert.events.select_related("actor")
    return render(request, "usage/alerts.html#alert-history", {"alert": alert, "events": events})


@require_GET
def alert_forms(request: HttpRequest, alert_id: int) -> HttpResponse:
    """The snooze / resolve / assign forms of one alert, loaded when its "More…" opens
    (a page of 200 alerts would otherwise carry 600 forms). Without htmx: a page of its own."""
    alert = alert_for(request.user, alert_id, on=today_utc())
    if not can_act_on_alert(request.user, alert):
        raise PermissionDenied
    context = {
        "alert": alert,
        "filters": _queue_filters(request, request.GET),
        "assignees": people_directory(request.user).filter(role=Role.CSM).order_by("name"),
        "today": today_utc(),
    }
    template = "usage/alerts.html#alert-forms" if request.htmx else "usage/alert_forms.html"
    return render(request, template, context)


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise ApplicationError(f"'{value}' is not a date (YYYY-MM-DD).") from None


def _assignee(request: HttpRequest) -> User | None:
    pk = _whole(request.POST.get("assignee", ""))
    if pk is None:
        return None
    return people_directory(request.user).filter(pk=pk, role=Role.CSM).first()


def _act(request: HttpRequest, alert_ids: list[int]) -> None:
    alert_act(
        alert_ids=alert_ids,
        actor=request.user,
        action=request.POST.get("action", ""),
        today=today_utc(),
        note=request.POST.get("note", "")[:2000],
        until=_parse_date(request.POST.get("until", "")),
        assignee=_assignee(request),
    )


def _error_response(request: HttpRequest, message: str) -> HttpResponse:
    response = render(request, "usage/alerts.html#queue-message", {"error": message})
    response["HX-Retarget"] = "#queue-message"
    response["HX-Reswap"] = "innerHTML"
    return response


def _done(request: HttpRequest, *, alert=None, count: int = 1) -> str:
    """What the action did, in words: "Snoozed: Acme · Plateau." / "Resolved 3 alerts."."""
    from usage.signals.services import PAST_TENSE

    verb = PAST_TENSE.get(request.POST.get("action", ""), "updated").capitalize()
    if alert is not None:
        return f"{verb}: {alert.account.name} · {alert.get_kind_display()}."
    return f"{verb} {count} alert{'s' if count != 1 else ''}."


@require_POST
def alert_action(request: HttpRequest, alert_id: int) -> HttpResponse:
    """One action on one alert; htmx gets the updated row and the counts out of band."""
    alert = alert_for(request.user, alert_id, on=today_utc())
    filters = _queue_filters(request, request.POST)
    try:
        _act(request, [alert.pk])
    except ApplicationError as exc:
        if request.htmx:
            return _error_response(request, exc.message)
        messages.error(request, exc.message)
        return redirect(f"{reverse('usage:alerts')}?{_filter_query(filters)}")
    messages.success(request, _done(request, alert=alert))
    if not request.htmx:
        return redirect(f"{reverse('usage:alerts')}?{_filter_query(filters)}")
    alert = alert_for(request.user, alert_id, on=today_utc())
    context = _queue_context(request, filters)
    context.update(alert=alert, can_act=can_act_on_alert(request.user, alert), oob=True)
    return render(request, "usage/alerts.html#alert-row-response", context)


@require_POST
def alert_bulk(request: HttpRequest) -> HttpResponse:
    """One action on every selected alert, all or nothing; htmx gets the refreshed queue."""
    filters = _queue_filters(request, request.POST)
    ids = [pk for v in request.POST.getlist("alert") if (pk := _whole(v)) is not None]
    visible = set(alerts_visible_to(request.user, on=today_utc()).filter(pk__in=ids).values_list("pk", flat=True))
    try:
        if len(visible) != len(set(ids)):
            raise ApplicationError("Some selected alerts are not yours to see; reload the queue.")
        _act(request, ids)
    except ApplicationError as exc:
        if request.htmx:
            return _error_response(request, exc.message)
        messages.error(request, exc.message)
        return redirect(f"{reverse('usage:alerts')}?{_filter_query(filters)}")
    messages.success(request, _done(request, count=len(ids)))
    if not request.htmx:
        return redirect(f"{reverse('usage:alerts')}?{_filter_query(filters)}")
    context = _queue_context(request, filters)
    context["done"] = f"{request.POST.get('action')}: {len(ids)} alert{'s' if len(ids) != 1 else ''}."
    return render(request, "usage/alerts.html#alert-queue", context)


# --- AE book -----------------------------------------------------------------------------

BOOK_PAGE = 100
BOOK_SORTS = {
    "name": "account__name",
    "run_rate": "run_rate",
    "committed": "committed_arr",
    "burn": "burn_rate",
    "pacing": "commit_pacing",
    "health": "health_score",
    "alerts": "open_alerts",
    "gate": "next_gate_on",
}


@dataclass(frozen=True)
class BookScope:
    """Whose book: ``me``, ``team`` (everyone the viewer manages, themself included),
    ``all`` (every account the viewer may see) or one person in scope."""

    key: str
    person: User | None
    people: list[int] | None  # owners whose books are unioned; None: every visible account
    label: str


def _default_scope(user: User) -> str:
    if sees_company(user) or user.role == Role.PRODUCT:
        return "all"
    return "team" if teams_managed_by(user).exists() else "me"


def _book_scope(request: HttpRequest) -> BookScope:
    """The scope asked for (``?person=``), or the viewer's default: company-wide roles see
    everything, managers their teams, everyone else their own book. A person outside the
    viewer's scope is a 403."""
    user = request.user
    value = request.GET.get("person", "") or _default_scope(user)
    if value == "me":
        return BookScope("me", user, [user.pk], "My book")
    if value == "all" and (sees_company(user) or user.role == Role.PRODUCT):
        return BookScope("all", None, None, "Every account")
    if value in ("team", "all"):
        people = list(people_in_scope(user).values_list("pk", flat=True))
        return BookScope("team", None, people, "My teams' books")
    if _whole(value) is None:
        raise PermissionDenied
    person = people_in_scope(user).filter(pk=_whole(value)).first()
    if person is None:
        raise PermissionDenied
    return BookScope(str(person.pk), person, [person.pk], f"{person.name}'s book")


def _book_context(request: HttpRequest) -> dict:
    scope = _book_scope(request)
    as_of = selectors.metrics_as_of()
    sort = request.GET.get("sort", "-run_rate")
    descending = sort.startswith("-")
    if sort.lstrip("-") not in BOOK_SORTS:
        sort, descending = "-run_rate", True
    band = request.GET.get("band", "")
    segment = request.GET.get("segment", "")
    q = request.GET.get("q", "").strip()[:100]
    filters = selectors.BookFilters(
        band=band if band in ("expand", "adopt", "escalate", "none") else "",
        segment=segment if segment in Segment.values else "",
        q=q,
    )
    rows = AccountMetrics.objects.none()
    totals = None
    rollups = []
    if as_of is not None:
        visible = accounts_visible_to(request.user, on=as_of)
        rows = selectors.book_rows(
            people=scope.people,
            as_of=as_of,
            visible=visible,
            filters=filters,
            order=("-" if descending else "") + BOOK_SORTS[sort.lstrip("-")],
        )
        totals = selectors.book_totals(rows)
        if scope.person is None:
            from usage.signals.home import rep_rollups

            reps = people_in_scope(request.user).filter(role__in=[Role.AE, Role.CSM]).order_by("name")
            rollups = rep_rollups(people=list(reps), as_of=as_of, visible_ids=set(visible.values_list("pk", flat=True)))
    page = max(1, min(_whole(request.GET.get("page", "")) or 1, 10_000))
    page_rows = list(rows[(page - 1) * BOOK_PAGE : page * BOOK_PAGE]) if as_of else []
    choices = []
    if sees_company(request.user) or request.user.role == Role.PRODUCT:
        choices.append(("all", "Every account"))
    if teams_managed_by(request.user).exists():
        choices.append(("team", "My teams' books"))
    if choices or request.user.role in (Role.AE, Role.CSM):
        choices.append(("me", "My book"))
    people = people_in_scope(request.user).filter(role__in=[Role.AE, Role.CSM]).exclude(pk=request.user.pk)
    return {
        "scope": scope,
        "person": scope.person,
        "scope_choices": choices if len(choices) > 1 or people.exists() else [],
        "people": people.order_by("name") if choices else [],
        "rollups": rollups,
        "all_rows": rows,
        "rows": page_rows,
        "last_row": (page - 1) * BOOK_PAGE + len(page_rows),
        "page": page,
        "first_row": (page - 1) * BOOK_PAGE + 1,
        "has_next": bool(totals and totals.accounts > page * BOOK_PAGE),
        "totals": totals,
        "as_of": as_of,
        "sort": sort,
        "filters": filters,
        "segments": Segment.choices,
        "bands": [
            ("expand", "Expand ≥ 70%"),
            ("adopt", "Adopt 40–70%"),
            ("escalate", "Escalate < 40%"),
            ("none", "No commit"),
        ],
    }


@require_GET
def book(request: HttpRequest) -> HttpResponse:
    template = "usage/book.html#book-table" if request.htmx else "usage/book.html"
    return render(request, template, _book_context(request))


@require_GET
def book_csv(request: HttpRequest) -> HttpResponse:
    context = _book_context(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    who = context["person"].email.split("@")[0] if context["person"] else context["scope"].key
    name = f"book-{who}-{context['as_of'] or 'empty'}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "account",
            "external_id",
            "segment",
            "as_of",
            "run_rate",
            "committed_arr",
            "burn_rate",
            "band",
            "commit_pacing",
            "health_score",
            "open_alerts",
            "next_gate",
            "next_gate_on",
        ]
    )
    for row in context["all_rows"].iterator(chunk_size=1000):
        writer.writerow(
            [
                spreadsheet_safe(row.account.name),
                spreadsheet_safe(row.account.external_id),
                row.account.segment,
                row.as_of,
                row.run_rate,
                row.committed_arr,
                "" if row.burn_rate is None else row.burn_rate,
                row.band,
                "" if row.commit_pacing is None else row.commit_pacing,
                row.health_score,
                row.open_alerts,
                row.next_gate,
                row.next_gate_on or "",
            ]
        )
    return response


# --- Company metrics ---------------------------------------------------------------------

COMPANY_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN, Role.PRODUCT})
# The company table's columns, in order (short labels where the table is dense).
PORTFOLIO_COLUMNS = (
    ("accounts", None),
    ("run_rate", None),
    ("committed_arr", None),
    ("burn_rate", "Burn"),
    ("nrr", None),
    ("gur", None),
    ("median_ttfbe_days", None),
    ("expansion_velocity", None),
    ("consumption_rate", "Consumption"),
    ("net_new_arr", None),
    ("realization_committed", "Committed (365d)"),
    ("realization_realized", None),
    ("realization_gap", "Gap"),
)
# Where a portfolio figure has its own entry in docs/metrics.md (summed or pooled, not per account).
PORTFOLIO_ANCHORS = {
    key: f"portfolio-{key}"
    for key in ("run_rate", "committed_arr", "burn_rate", "expansion_velocity", "consumption_rate", "net_new_arr")
}


@require_GET
def company(request: HttpRequest) -> HttpResponse:
    if request.user.role not in COMPANY_ROLES:
        raise PermissionDenied
    days = selectors.portfolio_days()
    as_of = _parse_as_of(request.GET.get("as_of", ""), days)
    context = selectors.company_metrics(as_of=as_of) if as_of else {}
    columns = [
        (PORTFOLIO_ANCHORS.get(key, key), label or DEFINITIONS[key][0], DEFINITIONS[key][1])
        for key, label in PORTFOLIO_COLUMNS
    ]
    context.update(days=days, as_of=as_of, columns=columns)
    template = "usage/company.html#company-body" if request.htmx else "usage/company.html"
    return render(request, template, context)


def _parse_as_of(value: str, days: list[dt.date]) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(value) if value else None
    except ValueError:
        day = None
    if day in days:
        return day
    return days[0] if days else None


# --- Alert settings (admin) --------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def alert_settings(request: HttpRequest) -> HttpResponse:
    if not can_change_alert_settings(request.user):
        raise PermissionDenied
    current = AlertSettings.current()
    history = UsageHistory.current()
    posted = request.POST if request.method == "POST" else None
    is_history = posted is not None and posted.get("form") == "history"
    form = AlertSettingsForm(None if is_history else posted, instance=current)
    history_form = UsageHistoryForm(posted if is_history else None, instance=history)
    if is_history and history_form.is_valid():
        saved = history_form.save(commit=False)
        saved.declared_by, saved.declared_at, saved.source = request.user, timezone.now(), "set by an admin"
        saved.save()
        when = saved.complete_from.isoformat() if saved.complete_from else "not declared (the first stored day)"
        messages.success(request, f"Usage history complete from: {when}. The next metrics refresh uses it.")
        return redirect("usage:alert_settings")
    if posted is not None and not is_history and form.is_valid():
        form.save()
        messages.success(request, "Alert settings saved; the next metrics refresh uses them.")
        return redirect("usage:alert_settings")
    context = {"form": form, "settings": current, "history_form": history_form, "history": history}
    return render(request, "usage/alert_settings.html", context)
