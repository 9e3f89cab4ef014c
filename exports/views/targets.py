"""Data → Exports (finance and admin): targets, test connection, run now, run log."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from exports.forms import RunForm, TargetForm
from exports.models import ExportedPartition, ExportRun, ExportTarget, RunState
from exports.selectors import TABLES
from exports.services import run_request_range, target_create, target_test, target_update
from revops.errors import ApplicationError
from usage.access import can_manage_data


def _require(request: HttpRequest) -> None:
    if not can_manage_data(request.user):
        raise PermissionDenied


def _target(request: HttpRequest, target_id: int) -> ExportTarget:
    _require(request)
    return get_object_or_404(ExportTarget, pk=target_id)


def _apply_error(form, exc: ApplicationError) -> None:
    field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
    form.add_error(field if field in form.fields else None, exc.message)


@require_http_methods(["GET", "POST"])
def targets(request: HttpRequest) -> HttpResponse:
    _require(request)
    form = TargetForm(request.POST or None, initial={"formats": ["parquet"], "tables": list(TABLES)})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                target = target_create(
                    name=data["name"],
                    url=data["url"],
                    formats=data["formats"],
                    tables=data["tables"],
                    schedule=data["schedule"],
                    credentials=form.credentials(),
                    created_by=request.user,
                )
            except ApplicationError as exc:
                _apply_error(form, exc)
            else:
                messages.success(request, f"Added {target.name}. Test the connection, then run a first export.")
                return redirect("exports:target", target_id=target.pk)
        status = 400
    rows = ExportTarget.objects.all()
    return render(request, "exports/targets.html", {"form": form, "targets": rows}, status=status)


def _detail(request, target: ExportTarget, *, form=None, run_form=None, status: int = 200) -> HttpResponse:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    form = form or TargetForm(
        initial={
            "name": target.name,
            "url": target.url,
            "formats": target.formats,
            "tables": target.tables,
            "schedule": target.schedule,
        }
    )
    run_form = run_form or RunForm(initial={"first_day": yesterday, "last_day": yesterday, "tables": target.tables})
    run_form.fields["tables"].choices = [(t, TABLES[t].title) for t in target.tables]
    context = {
        "target": target,
        "form": form,
        "run_form": run_form,
        "runs": ExportRun.objects.filter(target=target).select_related("requested_by")[:20],
        "partitions": target.partitions.count(),
    }
    return render(request, "exports/target.html", context, status=status)


@require_http_methods(["GET", "POST"])
def target_detail(request: HttpRequest, target_id: int) -> HttpResponse:
    target = _target(request, target_id)
    if request.method == "GET":
        return _detail(request, target)
    form = TargetForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            target_update(
                target=target,
                name=data["name"],
                url=data["url"],
                formats=data["formats"],
                tables=data["tables"],
                schedule=data["schedule"],
                credentials=form.credentials(),
            )
        except ApplicationError as exc:
            _apply_error(form, exc)
        else:
            messages.success(request, "Saved. The next run writes with these settings.")
            return redirect("exports:target", target_id=target.pk)
    return _detail(request, target, form=form, status=400)


@require_POST
def test_connection(request: HttpRequest, target_id: int) -> HttpResponse:
    target = _target(request, target_id)
    try:
        message = target_test(target=target)
    except ApplicationError as exc:
        messages.error(request, f"The connection test failed: {exc.message}")
    else:
        messages.success(request, message)
    return redirect("exports:target", target_id=target.pk)


@require_POST
def run_now(request: HttpRequest, target_id: int) -> HttpResponse:
    target = _target(request, target_id)
    form = RunForm(request.POST)
    form.fields["tables"].choices = [(t, TABLES[t].title) for t in target.tables]
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = run_request_range(
                target=target,
                tables=data["tables"],
                first=data["first_day"],
                last=data["last_day"],
                requested_by=request.user,
            )
        except ApplicationError as exc:
            _apply_error(form, exc)
        else:
            messages.success(request, f"Export queued (run {run.pk}).")
            return redirect("exports:run_detail", run_id=run.pk)
    return _detail(request, target, run_form=form, status=400)


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require(request)
    run = get_object_or_404(ExportRun.objects.select_related("target", "requested_by"), pk=run_id)
    counts = [(name, c) for name, c in sorted(run.counts.items()) if isinstance(c, dict)]
    context = {
        "run": run,
        "target": run.target,
        "counts": counts,
        # The partitions this run wrote that the target still holds as written by it.
        "partitions": ExportedPartition.objects.filter(run=run).order_by("table", "day"),
        "active": run.state in (RunState.QUEUED, RunState.RUNNING),
    }
    template = "exports/run.html#run-status" if request.htmx else "exports/run.html"
    return render(request, template, context)
