"""Data → Webhooks (finance and admin): endpoints, secrets, the delivery log, replays, tests."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from revops.errors import ApplicationError
from usage.access import can_manage_data
from webhooks.forms import EndpointForm, RotateForm
from webhooks.models import Delivery, DeliveryState, Endpoint
from webhooks.selectors import delivery_attempts, delivery_log, endpoint_list, endpoint_queue
from webhooks.services import (
    FAILING_AFTER,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    delivery_replay_request,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
)

SESSION_NEW_SECRET = "webhooks:new-secret"  # noqa: S105 (a session key)


def _require(request: HttpRequest) -> None:
    if not can_manage_data(request.user):
        raise PermissionDenied


def _endpoint(request: HttpRequest, endpoint_id: int) -> Endpoint:
    _require(request)
    return get_object_or_404(Endpoint.objects.select_related("team"), pk=endpoint_id)


def _delivery(request: HttpRequest, delivery_id: int) -> Delivery:
    _require(request)
    return get_object_or_404(Delivery.objects.select_related("endpoint", "message"), pk=delivery_id)


def _form_error(form, exc: ApplicationError) -> None:
    field = (exc.details or {}).get("field")
    form.add_error(field if field in form.fields else None, exc.message)


def _remember_secret(request: HttpRequest, endpoint: Endpoint, secret: str) -> None:
    # Post/redirect/get: shown once, on the page the redirect leads to, then forgotten.
    request.session[SESSION_NEW_SECRET] = {"endpoint": endpoint.pk, "secret": secret}


@require_http_methods(["GET", "POST"])
def endpoints(request: HttpRequest) -> HttpResponse:
    _require(request)
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = endpoint_create(
                name=data["name"],
                url=data["url"],
                event_types=data["event_types"],
                team=form.team(),
                enabled=data["enabled"],
                created_by=request.user,
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            _remember_secret(request, created.endpoint, created.secret)
            messages.success(request, f"Endpoint {created.endpoint.name} added. Copy its signing secret now.")
            return redirect("webhooks:endpoint", endpoint_id=created.endpoint.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/endpoints.html", {"form": form, "endpoints": endpoint_list()}, status=status)


def _detail(
    request: HttpRequest, endpoint: Endpoint, *, form: EndpointForm | None = None, status: int = 200
) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in DeliveryState.values:
        state = ""
    deliveries, matching = delivery_log(endpoint=endpoint, state=state)
    new_secret = None
    remembered = request.session.get(SESSION_NEW_SECRET)
    if request.method == "GET" and remembered and remembered.get("endpoint") == endpoint.pk:
        new_secret = request.session.pop(SESSION_NEW_SECRET)["secret"]
    context = {
        "endpoint": endpoint,
        "form": form or EndpointForm(initial=EndpointForm.initial_for(endpoint)),
        "rotate_form": RotateForm(),
        "queue": endpoint_queue(endpoint=endpoint),
        "deliveries": deliveries,
        "matching": matching,
        "state": state,
        "states": DeliveryState.choices,
        "new_secret": new_secret,
        "failing_after": FAILING_AFTER,
        "max_attempts": MAX_ATTEMPTS,
        "schedule": _schedule_text(),
    }
    template = "webhooks/endpoint.html#delivery-log" if request.htmx else "webhooks/endpoint.html"
    response = render(request, template, context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"  # the secret must not linger in caches
    return response


def _schedule_text() -> str:
    def words(delay: dt.timedelta) -> str:
        seconds = int(delay.total_seconds())
        if seconds < 60:
            return f"{seconds} s"
        if seconds < 3600:
            return f"{seconds // 60} min"
        return f"{seconds // 3600} h"

    return "immediately, then after " + ", ".join(words(d) for d in RETRY_DELAYS)


@require_GET
def endpoint_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    return _detail(request, _endpoint(request, endpoint_id))


@require_POST
def endpoint_edit(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    form = EndpointForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            endpoint_update(
                endpoint=endpoint,
                name=data["name"],
                url=data["url"],
                event_types=data["event_types"],
                team=form.team(),
                enabled=data["enabled"],
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)
    return _detail(request, endpoint, form=form, status=400)


@require_POST
def endpoint_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    form = RotateForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"The secret was not rotated: {problems}")
        return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)
    hours = form.cleaned_data["grace_hours"]
    rotated = endpoint_rotate_secret(endpoint=endpoint, grace=dt.timedelta(hours=hours))
    _remember_secret(request, endpoint, rotated.secret)
    if hours:
        messages.success(request, f"New secret made. The old one keeps signing beside it for {hours} h.")
    else:
        messages.success(request, "New secret made. The old one no longer signs.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)


@require_POST
def endpoint_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    try:
        delivery = endpoint_send_test(endpoint=endpoint, requested_by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)
    messages.success(request, f"Test event queued (delivery {delivery.sequence}).")
    return redirect("webhooks:delivery", delivery_id=delivery.pk)


@require_GET
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery(request, delivery_id)
    context = {
        "delivery": delivery,
        "endpoint": delivery.endpoint,
        "attempts": delivery_attempts(delivery=delivery),
        "body": json.dumps(json.loads(delivery.message.body), indent=2),
        "max_attempts": MAX_ATTEMPTS,
        "waiting": delivery.attempt_log.filter(sent_at__isnull=True).exists(),
    }
    template = "webhooks/delivery.html#attempts" if request.htmx else "webhooks/delivery.html"
    return render(request, template, context)


@require_POST
def delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery(request, delivery_id)
    try:
        delivery_replay_request(delivery=delivery, requested_by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Replay queued: the same message, with the same webhook-id, is sent again.")
    return redirect("webhooks:delivery", delivery_id=delivery.pk)
