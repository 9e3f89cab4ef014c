"""Data → Connections → Stripe (finance and admin), and Stripe's webhook endpoint (public, signed)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Account
from integrations.billing import selectors
from integrations.billing.client import BillingError
from integrations.billing.forms import DomainForm, StripeConnectionForm, SyncForm
from integrations.billing.services import (
    WebhookRefused,
    connection_create,
    domain_remove,
    domain_set,
    run_request,
    webhook_receive,
)
from integrations.models import StripeConnection, StripeRun
from revops.errors import ApplicationError
from usage.access import can_manage_data

MAX_WEBHOOK_BYTES = 1_000_000
# The order a run's counts read in (jsonb keeps its own key order).
COUNT_ORDER = (
    "read",
    "metadata",
    "domain",
    "unmatched",
    "new",
    "adjusted",
    "lowered",
    "unchanged",
    "created",
    "updated",
    "held",
    "skipped",
    "events",
    "quantity",
    "documents",
)
KIND_ORDER = ("customers", "usage", "invoice", "credit_note", "refund", "held_released")


def _ordered(counts: dict) -> list[tuple[str, list[tuple[str, object]]]]:
    def rank(name: str, order: tuple) -> tuple:
        return (order.index(name) if name in order else len(order), name)

    return [
        (kind, sorted(counts[kind].items(), key=lambda item: rank(item[0], COUNT_ORDER)))
        for kind in sorted(counts, key=lambda kind: rank(kind, KIND_ORDER))
    ]


def _require(request: HttpRequest) -> None:
    if not can_manage_data(request.user):
        raise PermissionDenied


def _connection(request: HttpRequest, connection_id: int) -> StripeConnection:
    _require(request)
    return get_object_or_404(StripeConnection, pk=connection_id)


def _form_error(form, exc: ApplicationError) -> None:
    field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
    form.add_error(field if field in form.fields else None, exc.message)


@require_http_methods(["GET", "POST"])
def stripe_connections(request: HttpRequest) -> HttpResponse:
    _require(request)
    form = StripeConnectionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                connection = connection_create(
                    name=data["name"],
                    secret_key=data["secret_key"],
                    webhook_secret=data["webhook_secret"],
                    api_base=data["api_base"],
                    metadata_key=data["metadata_key"],
                    match_email_domain=data["match_email_domain"],
                    usage_mode=data["usage_mode"],
                    meter_map=data["meter_map"],
                    usage_start=data["usage_start"],
                    created_by=request.user,
                )
            except ApplicationError as exc:
                _form_error(form, exc)
            else:
                messages.success(request, f"Connected {connection.name}: the key works. Sync it to match customers.")
                return redirect("integrations:stripe_connection", connection_id=connection.pk)
        status = 400
    context = {"form": form, "connections": selectors.connection_list()}
    return render(request, "integrations/stripe_connections.html", context, status=status)


def _detail(request: HttpRequest, connection: StripeConnection, *, domain_form=None, status: int = 200):
    account = None
    if ref := request.GET.get("account", "").strip():
        account = Account.objects.filter(external_id=ref).first()
    documents, document_count = selectors.documents(connection=connection, account_id=account.pk if account else None)
    context = {
        "connection": connection,
        "report": selectors.matching_report(connection=connection),
        "domains": selectors.domains(connection=connection),
        "domain_form": domain_form or DomainForm(),
        "runs": selectors.recent_runs(connection=connection),
        "webhooks": selectors.webhook_log(connection=connection),
        "documents": documents,
        "document_count": document_count,
        "account": account,
        "account_ref": ref,
        "webhook_url": request.build_absolute_uri(reverse("stripe_webhook", args=[connection.pk])),
    }
    return render(request, "integrations/stripe_connection.html", context, status=status)


@require_GET
def stripe_connection(request: HttpRequest, connection_id: int) -> HttpResponse:
    return _detail(request, _connection(request, connection_id))


@require_POST
def stripe_domain_add(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection(request, connection_id)
    form = DomainForm(request.POST)
    if form.is_valid():
        try:
            row = domain_set(
                connection=connection,
                domain=form.cleaned_data["domain"],
                account_external_id=form.cleaned_data["account"],
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"{row.domain} → {row.account.name}; the next sync matches its customers.")
            return redirect("integrations:stripe_connection", connection_id=connection.pk)
    return _detail(request, connection, domain_form=form, status=400)


@require_POST
def stripe_domain_remove(request: HttpRequest, connection_id: int, domain_id: int) -> HttpResponse:
    connection = _connection(request, connection_id)
    removed = domain_remove(connection=connection, domain_id=domain_id)
    if removed is None:
        messages.error(request, "That domain is not in this connection's table (already removed?); nothing changed.")
    else:
        messages.success(request, f"{removed} removed; the next sync matches without it.")
    return redirect("integrations:stripe_connection", connection_id=connection.pk)


@require_POST
def stripe_sync(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection(request, connection_id)
    form = SyncForm(request.POST)
    full = form.is_valid() and form.cleaned_data["full"]
    run = run_request(connection=connection, requested_by=request.user, full=full)
    messages.success(request, f"Sync queued (run {run.pk}).")
    return redirect("integrations:stripe_run", run_id=run.pk)


@require_GET
def stripe_run(request: HttpRequest, run_id: int) -> HttpResponse:
    _require(request)
    run = get_object_or_404(StripeRun.objects.select_related("connection", "requested_by"), pk=run_id)
    context = {
        "run": run,
        "connection": run.connection,
        "active": selectors.run_is_active(run),
        "counts": _ordered(run.counts),
    }
    template = "integrations/stripe_run.html#run-status" if request.htmx else "integrations/stripe_run.html"
    return render(request, template, context)


@csrf_exempt  # Stripe cannot send a CSRF token: the signature is the proof
@login_not_required
@require_POST
def stripe_webhook(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = StripeConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        return JsonResponse({"error": "No such Stripe connection."}, status=404)
    try:
        payload = request.body
    except RawPostDataException:  # a multipart form (read by a middleware first): never Stripe's
        return JsonResponse({"error": "Stripe posts JSON; this body is a form."}, status=400)
    if len(payload) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": f"The body is over {MAX_WEBHOOK_BYTES} bytes."}, status=400)
    try:
        record = webhook_receive(
            connection=connection, payload=payload, signature=request.headers.get("Stripe-Signature", "")
        )
    except WebhookRefused as exc:
        return JsonResponse({"error": exc.message}, status=400)
    except BillingError as exc:
        # Stripe could not be asked (a refund's charge): 503 makes Stripe deliver it again later.
        return JsonResponse({"error": exc.message}, status=503)
    return JsonResponse({"received": record.event_id, "outcome": record.outcome, "detail": record.detail})
