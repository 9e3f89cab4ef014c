"""The forecast pages: a scope's fan chart, its breakdown and accounts, accuracy, and the
account page's forecast panel.

Leaders, finance and admins open the company and drill down (segment, team, book,
account); product managers open the company and its segments; AEs and CSMs see their own
book (and managers their team's) read only. Every scope goes through
``rollups.scope_for``, which intersects it with what the viewer may see, so a typed URL
cannot reach another book: it is a 404.

An account's figures include its divisions unless ``?divisions=exclude`` (own usage
only); scope totals count each account once on its own rows. Every figure says which.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from forecasting import cache as planning_cache
from forecasting import rollups
from forecasting.accuracy import HORIZONS as ACCURACY_HORIZONS
from forecasting.forecast_charts import fan_figure
from forecasting.models import AccountForecast, ForecastMethod
from forecasting.rollups import Divisions, ScopeKind
from revops.access import sees_company
from revops.clock import check_day_in_range, today_utc
from revops.models import Role, Team, User

ACTUAL_DAYS = 120  # actuals shown before the forecast starts
PAGE_SIZE = 50
ORDERS = tuple(rollups.ROW_ORDERS)


class ScopeForm(forms.Form):
    scope = forms.ChoiceField(choices=[(k, k) for k in ScopeKind.ALL], required=False)
    key = forms.CharField(max_length=100, required=False)
    as_of = forms.DateField(
        required=False, help_text="YYYY-MM-DD: the snapshot's day.", validators=[check_day_in_range]
    )
    order = forms.ChoiceField(choices=[(k, k) for k in ORDERS], required=False)
    page = forms.IntegerField(min_value=1, required=False)
    divisions = forms.ChoiceField(choices=[(k, k) for k in Divisions.ALL], required=False)


def _scope(request: HttpRequest) -> tuple[ScopeForm, rollups.Scope, dt.date | None]:
    form = ScopeForm(request.GET)
    if not form.is_valid():
        raise Http404("Bad forecast parameters: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    data = form.cleaned_data
    kind, key = (data["scope"], data["key"]) if data["scope"] else rollups.default_scope(request.user)
    divisions = data["divisions"] != Divisions.EXCLUDE
    scope = rollups.scope_for(request.user, kind, key, on=today_utc(), divisions=divisions)
    as_of = data["as_of"] or rollups.latest_as_of()
    return form, scope, as_of


def _scope_links(user: User) -> list[tuple[str, str]]:
    """The scopes this viewer can jump to: (label, query string)."""
    links = []
    if rollups.sees_all_forecasts(user):
        links.append(("Company", f"scope={ScopeKind.COMPANY}"))
        links += [(label, f"scope={ScopeKind.SEGMENT}&key={value}") for value, label in rollups.Segment.choices]
    if sees_company(user):
        links += [(team.name, f"scope={ScopeKind.TEAM}&key={team.pk}") for team in Team.objects.order_by("name")]
    else:
        links += [(f"Team {t.name}", f"scope={ScopeKind.TEAM}&key={t.pk}") for t in Team.objects.filter(manager=user)]
    if user.role in (Role.AE, Role.CSM) or user.ownerships.exists():
        links.append(("Your book", f"scope={ScopeKind.BOOK}&key={user.pk}"))
    return links


def _breakdowns(user: User, scope: rollups.Scope, *, as_of: dt.date) -> list[tuple[str, list[rollups.BreakdownRow]]]:
    on = today_utc()
    # Team books are for company-wide roles and managers (a product manager sees segments).
    teams = sees_company(user) or Team.objects.filter(manager=user).exists()
    if scope.kind == ScopeKind.COMPANY:
        breakdowns = [("By segment", rollups.breakdown_by_segment(scope.accounts, as_of=as_of))]
        if teams:
            breakdowns.append(
                (
                    "By team (a co-owned account counts in each owner's team)",
                    rollups.breakdown_by_team(user, scope.accounts, as_of=as_of, on=on),
                )
            )
        return breakdowns
    if scope.kind == ScopeKind.SEGMENT:
        return [("By team", rollups.breakdown_by_team(user, scope.accounts, as_of=as_of, on=on))] if teams else []
    if scope.kind == ScopeKind.TEAM:
        members = User.objects.filter(team_id=int(scope.key)).order_by("name")
        return [("By book", rollups.breakdown_by_person(members, scope.accounts, as_of=as_of, on=on))]
    return []


def _divisions_links(scope: rollups.Scope, base: str) -> list[tuple[str, str, bool]]:
    """The toggle between an account's figures with its divisions and its own usage only:
    (label, query string, current). ``base`` is the rest of the query string."""
    exclude = f"{base}&divisions={Divisions.EXCLUDE}" if base else f"divisions={Divisions.EXCLUDE}"
    return [
        (Divisions.LABELS[Divisions.INCLUDE], base, scope.divisions),
        (Divisions.LABELS[Divisions.EXCLUDE], exclude, not scope.divisions),
    ]


def _basis(scope: rollups.Scope) -> tuple[str, str]:
    """What a scope's headline figures cover: (a label beside each figure, a sentence)."""
    if scope.kind == ScopeKind.ACCOUNT:
        if not scope.has_divisions:
            return "own usage (no divisions)", f"{scope.root.name} has no divisions: its own usage."
        if scope.divisions:
            return scope.divisions_label, f"{scope.label}: the account's own usage plus every division's."
        return scope.divisions_label, f"{scope.root.name}: its own usage only, without its divisions."
    return (
        "each account once",
        "Totals count each account once, on its own usage: a division counts as itself, never again in its "
        f"parent. Each row of the accounts table shows the account {scope.divisions_label}.",
    )


@require_GET
def forecast_page(request: HttpRequest) -> HttpResponse:
    form, scope, as_of = _scope(request)
    context: dict = {
        "scope": scope,
        "as_of": as_of,
        "days": rollups.snapshot_days(),
        "scope_links": _scope_links(request.user),
        "horizons": rollups.HORIZONS,
        "basis": _basis(scope),
        "rows_label": scope.divisions_label,
    }
    if as_of is not None:
        order = form.cleaned_data["order"] or "next_90"
        rows = rollups.account_rows(
            scope.accounts, as_of=as_of, order=order, divisions=scope.divisions, scope_key=scope.cache_id
        )
        page = Paginator(rows, PAGE_SIZE)
        base_query = f"{scope.query}&as_of={as_of.isoformat()}"
        context |= {
            "page": page.get_page(form.cleaned_data["page"] or 1),
            "order": order,
            "base_query": base_query,
            "divisions_links": _divisions_links(scope, f"{scope.scope_query}&as_of={as_of.isoformat()}&order={order}"),
        }
        if request.htmx and request.GET.get("page"):  # the accounts table alone
            return render(request, "forecasting/forecast.html#accounts", context)
        totals = rollups.rolled_totals(scope.accounts, as_of=as_of)
        first_actual = as_of - dt.timedelta(days=ACTUAL_DAYS - 1)
        context |= {
            "totals": totals,
            "method_counts": _method_counts(totals),
            "headline": [(h, totals.totals[h], totals.run_rate_total(h)) for h in rollups.HORIZONS],
            "figure": fan_figure(
                rollups.cached_points(scope, as_of=as_of),
                rollups.cached_actuals(scope, first=first_actual, last=as_of),
                first_actual=first_actual,
                as_of=as_of,
                title=f"{scope.label}: revenue per day",
            ),
            "breakdowns": rollups.cached(
                "breakdowns",
                scope,
                as_of,
                "all" if sees_company(request.user) else request.user.pk,  # a manager sees only their teams
                compute=lambda: _breakdowns(request.user, scope, as_of=as_of),
            ),
        }
    return render(request, "forecasting/forecast.html", context)


def _method_counts(totals: rollups.RolledTotals) -> list[tuple[int, str, str]]:
    """(accounts, short label, full label) per method, most used first."""
    labels = dict(ForecastMethod.choices)
    counts = sorted(totals.methods.items(), key=lambda item: (-item[1], item[0]))
    return [(n, rollups.METHOD_LABELS.get(m, m), labels.get(m, m)) for m, n in counts]


@require_GET
def accuracy_partial(request: HttpRequest) -> HttpResponse:
    """Accuracy of the scope's snapshots so far, beside the naive baseline (loaded after the page)."""
    _, scope, _ = _scope(request)
    rows = planning_cache.snapshot_accuracy(
        scope_id=scope.cache_id,
        account_ids=lambda: list(scope.accounts.values_list("pk", flat=True)),
        horizons=tuple(ACCURACY_HORIZONS),
    )
    return render(request, "forecasting/forecast_accuracy.html", {"rows": rows, "scope": scope})


@require_GET
def account_panel(request: HttpRequest, external_id: str) -> HttpResponse:
    """The account page's forecast: the account with its divisions (``?divisions=exclude``: its
    own usage only), as of its newest snapshot."""
    form = ScopeForm(request.GET)
    divisions = not (form.is_valid() and form.cleaned_data["divisions"] == Divisions.EXCLUDE)
    on = today_utc()
    scope = rollups.scope_for(
        request.user, ScopeKind.ACCOUNT, external_id, on=on, divisions=divisions
    )  # 404 outside reach
    account = scope.root
    own = AccountForecast.objects.filter(account=account).order_by("-as_of").first()
    as_of = own.as_of if own else rollups.latest_as_of(scope.accounts)
    panel_url = reverse("forecasting:account_panel", args=[account.external_id])
    context: dict = {
        "account": account,
        "scope": scope,
        "own": own,
        "as_of": as_of,
        "basis": _basis(scope),
        "panel_url": panel_url,
        "divisions_links": _divisions_links(scope, "") if scope.has_divisions else [],
    }
    if as_of is not None:
        totals = rollups.rolled_totals(scope.accounts, as_of=as_of)
        first_actual = as_of - dt.timedelta(days=ACTUAL_DAYS - 1)
        context |= {
            "headline": [(h, totals.totals[h], totals.run_rate_total(h)) for h in rollups.HORIZONS],
            "totals": totals,
            "method_counts": _method_counts(totals),
            "figure": fan_figure(
                rollups.cached_points(scope, as_of=as_of),
                rollups.cached_actuals(scope, first=first_actual, last=as_of),
                first_actual=first_actual,
                as_of=as_of,
                title="Revenue per day: actual and forecast",
                height=300,
            ),
            "page_url": reverse("forecasting:forecast") + f"?{scope.query}&as_of={as_of.isoformat()}",
        }
    template = "forecasting/forecast_panel.html"
    return render(request, f"{template}#panel" if request.htmx else template, context)
