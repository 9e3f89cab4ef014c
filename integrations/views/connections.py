"""Data → Connections (finance and admin): connect, map, preview, run now, history and log."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import account_for
from integrations.forms import SECTIONS, ConnectionForm, MappingForm, RunForm
from integrations.models import Connection, Outcome, SyncRun
from integrations.selectors import connection_list, crm_links, recent_runs, run_is_active, run_log
from integrations.services import connection_create, connection_update_mapping, run_request
from revops.errors import ApplicationError
from usage.access import can_manage_data


def _require(request: HttpRequest) -> None:
    if not can_manage_data(request.user):
        raise PermissionDenied


def _connection(request: HttpRequest, connection_id: int) -> Connection:
    _require(request)
    return get_object_or_404(Connection, pk=connection_id)


@require_http_methods(["GET", "POST"])
def connections(request: HttpRequest) -> HttpResponse:
    _require(request)
    form = ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        credentials = {k: data[k] for k in ("access_token", "refresh_token", "client_id", "client_secret") if data[k]}
        try:
            connection = connection_create(
                name=data["name"],
                provider=data["provider"],
                base_url=data["base_url"],
                portal_id=data["portal_id"],
                credentials=credentials,
                created_by=request.user,
            )
        except ApplicationError as exc:
            field = (exc.details or {}).get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Connected {connection.name}. Check the mapping, then preview a first sync.")
            return redirect("integrations:connection", connection_id=connection.pk)
    return render(request, "integrations/connections.html", {"form": form, "connections": connection_list()})


def _detail(request: HttpRequest, connection: Connection, mapping_form: MappingForm | None = None, status: int = 200):
    form = mapping_form or MappingForm(
        provider=connection.provider, initial=MappingForm.initial_for(connection.mapping)
    )
    sections = [
        (section, [form[name] for name in form.fields if name.startswith(f"{section}.")]) for section in SECTIONS
    ]
    context = {"connection": connection, "form": form, "sections": sections, "runs": recent_runs(connection=connection)}
    return render(request, "integrations/connection.html", context, status=status)


@require_GET
def connection_detail(request: HttpRequest, connection_id: int) -> HttpResponse:
    return _detail(request, _connection(request, connection_id))


@require_POST
def mapping(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection(request, connection_id)
    form = MappingForm(request.POST, provider=connection.provider)
    if form.is_valid():
        try:
            connection_update_mapping(connection=connection, mapping=form.mapping(connection.mapping))
        except ApplicationError as exc:
            field = (exc.details or {}).get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, "Mapping saved. The next run uses it; preview it first.")
            return redirect("integrations:connection", connection_id=connection.pk)
    return _detail(request, connection, form, status=400)


@require_POST
def run_now(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection(request, connection_id)
    form = RunForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"Nothing was started: {problems}")
        return redirect("integrations:connection", connection_id=connection.pk)
    data = form.cleaned_data
    run = run_request(
        connection=connection, kind=data["kind"], requested_by=request.user, dry_run=data["dry_run"], full=data["full"]
    )
    what = "Preview" if run.dry_run else run.get_kind_display()
    messages.success(request, f"{what} queued (run {run.pk}).")
    return redirect("integrations:run_detail", run_id=run.pk)


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require(request)
    run = get_object_or_404(SyncRun.objects.select_related("connection", "requested_by"), pk=run_id)
    outcome = request.GET.get("outcome", "")
    if outcome not in Outcome.values:
        outcome = ""
    entries, matching = run_log(run=run, outcome=outcome)
    context = {
        "run": run,
        "connection": run.connection,
        "entries": entries,
        "matching": matching,
        "outcome": outcome,
        "outcomes": Outcome.choices,
        "active": run_is_active(run),
        "counts": sorted(run.counts.items()),
    }
    template = "integrations/run.html#run-status" if request.htmx else "integrations/run.html"
    return render(request, template, context)


@require_GET
def account_link(request: HttpRequest, external_id: str) -> HttpResponse:
    """The account page's CRM panel: a link to the record in each connected CRM."""
    account = account_for(request.user, external_id, on=timezone.localdate())
    return render(request, "integrations/account_link.html", {"links": crm_links(account_id=account.pk)})
