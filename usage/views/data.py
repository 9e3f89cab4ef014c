"""Data pages: imports (with progress), quarantine and API keys. Finance and admin only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from revops.api_keys import api_key_create, api_key_reads, api_key_revoke
from revops.errors import ApplicationError
from revops.models import ApiKey
from usage.access import can_manage_api_keys, can_manage_data
from usage.forms import ApiKeyForm, ImportForm
from usage.ingestion.jobs import import_job_create, import_job_progress
from usage.ingestion.services import quarantine_replay
from usage.models import ImportJob, QuarantinedEvent

RECENT_JOBS = 20


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    _require(can_manage_data(request.user))
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                user=request.user,
                complete_from=form.cleaned_data.get("complete_from"),
            )
        except ApplicationError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("usage:import_job", job_id=job.pk)
    jobs = ImportJob.objects.select_related("created_by")[:RECENT_JOBS]
    return render(request, "usage/imports.html", {"form": form, "jobs": jobs})


@require_GET
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    _require(can_manage_data(request.user))
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=job_id)
    context = {"job": job, "progress": import_job_progress(job)}
    template = "usage/import_job.html#job-status" if request.htmx else "usage/import_job.html"
    return render(request, template, context)


@require_GET
def quarantine(request: HttpRequest) -> HttpResponse:
    _require(can_manage_data(request.user))
    reasons = (
        QuarantinedEvent.objects.values("reason")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
        .order_by("-n")[:200]
    )
    return render(request, "usage/quarantine.html", {"reasons": reasons, "total": QuarantinedEvent.objects.count()})


@require_POST
def quarantine_replay_view(request: HttpRequest) -> HttpResponse:
    _require(can_manage_data(request.user))
    result = quarantine_replay()
    messages.success(
        request,
        f"Replayed {result.replayed} events ({result.duplicates} were already stored); "
        f"{result.still_unknown} still wait for their account or meter.",
    )
    return redirect("usage:quarantine")


SESSION_NEW_KEY = "usage:new-api-key-secret"


@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    _require(can_manage_api_keys(request.user))
    form = ApiKeyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            _, secret = api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
                created_by=request.user,
                acts_as=form.cleaned_data["reads_as"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            # Post/redirect/get: a reload cannot make a second key; the secret is shown
            # once, on the page the redirect leads to, then forgotten.
            request.session[SESSION_NEW_KEY] = secret
            return redirect("usage:api_keys")
    new_secret = request.session.pop(SESSION_NEW_KEY, None) if request.method == "GET" else None
    keys = [(key, api_key_reads(key)) for key in ApiKey.objects.select_related("created_by", "acts_as")]
    response = render(request, "usage/api_keys.html", {"form": form, "keys": keys, "new_secret": new_secret})
    if new_secret:
        response["Cache-Control"] = "no-store"  # the secret must not linger in caches
    return response


@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    _require(can_manage_api_keys(request.user))
    key = get_object_or_404(ApiKey, pk=key_id)
    api_key_revoke(key=key)
    messages.success(request, f"Key '{key.name}' revoked; requests with it now get 401.")
    return redirect("usage:api_keys")
