"""Data → Connections → Warehouse (finance and admin): sources, test & preview, pull now, history."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.models import RunState, WarehousePull, WarehouseSource
from integrations.warehouse.forms import MAP_FIELDS, WarehouseSourceForm
from integrations.warehouse.pull import STAGE_COLUMNS
from integrations.warehouse.selectors import recent_pulls, warehouse_source_list
from integrations.warehouse.services import pull_request, source_preview, warehouse_source_save
from integrations.warehouse.sources import field_names
from revops.errors import ApplicationError
from usage.access import can_manage_data


def _require(request: HttpRequest) -> None:
    if not can_manage_data(request.user):
        raise PermissionDenied


def _source(request: HttpRequest, source_id: int) -> WarehouseSource:
    _require(request)
    return get_object_or_404(WarehouseSource, pk=source_id)


def _save(request: HttpRequest, form: WarehouseSourceForm, source: WarehouseSource | None) -> WarehouseSource | None:
    if not form.is_valid():
        return None
    try:
        return warehouse_source_save(source=source, user=request.user, **form.service_kwargs())
    except ApplicationError as exc:
        field = (exc.details or {}).get("field")
        form.add_error(field if field in form.fields else None, exc.message)
        return None


@require_http_methods(["GET", "POST"])
def warehouse_sources(request: HttpRequest) -> HttpResponse:
    _require(request)
    form = WarehouseSourceForm(request.POST or None)
    if request.method == "POST":
        source = _save(request, form, None)
        if source:
            messages.success(request, f"Saved {source.name}. Test & preview it before its first pull.")
            return redirect("integrations:warehouse_source", source_id=source.pk)
    context = {"form": form, "sources": warehouse_source_list()}
    return render(request, "integrations/warehouse.html", context, status=400 if form.errors else 200)


def _detail(request, source, *, form=None, preview=None, status=200) -> HttpResponse:
    form = form or WarehouseSourceForm(initial=WarehouseSourceForm.initial_for(source))
    context = {
        "source": source,
        "form": form,
        "pulls": recent_pulls(source=source),
        "preview": preview,
        "map_fields": [form[f"map_{name}"] for name in MAP_FIELDS],
    }
    if preview is not None:
        columns = [*field_names(source.mode), "cursor"] if source.mode == "events" else STAGE_COLUMNS
        problems: dict[int, dict[str, str]] = {}
        labels = {**(source.mapping or {}), "cursor": source.cursor_column}
        reverse = {column: name for name, column in labels.items()}
        for error in preview.report.errors:
            name = reverse.get(error["column"], error["column"])
            cell = problems.setdefault(error["row"], {})
            cell[name] = f"{cell[name]}; {error['reason']}" if name in cell else error["reason"]
        context["preview_columns"] = [(c, labels.get(c) or "") for c in columns]
        context["preview_rows"] = [
            {
                "row": row["row"],
                "cells": [(row.get(c, ""), problems.get(row["row"], {}).get(c, "")) for c in columns],
                "other": problems.get(row["row"], {}).get("", ""),
            }
            for row in preview.preview_rows
        ]
    return render(request, "integrations/warehouse_source.html", context, status=status)


@require_http_methods(["GET", "POST"])
def warehouse_source(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(request, source_id)
    if request.method == "POST":
        form = WarehouseSourceForm(request.POST)
        saved = _save(request, form, source)
        if saved:
            messages.success(request, "Saved. The next pull uses it; test & preview it first.")
            return redirect("integrations:warehouse_source", source_id=source.pk)
        source.refresh_from_db()
        return _detail(request, source, form=form, status=400)
    return _detail(request, source)


@require_POST
def warehouse_preview(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(request, source_id)
    try:
        preview = source_preview(source=source)
    except ApplicationError as exc:
        messages.error(request, f"Test failed: {exc.message}")
        return redirect("integrations:warehouse_source", source_id=source.pk)
    return _detail(request, source, preview=preview)


@require_POST
def warehouse_pull_now(request: HttpRequest, source_id: int) -> HttpResponse:
    source = _source(request, source_id)
    run = pull_request(source=source, user=request.user, full=request.POST.get("full") == "on")
    messages.success(request, f"Pull {run.pk} queued.")
    return redirect("integrations:warehouse_pull", pull_id=run.pk)


@require_GET
def warehouse_pull(request: HttpRequest, pull_id: int) -> HttpResponse:
    _require(request)
    run = get_object_or_404(WarehousePull.objects.select_related("source", "requested_by"), pk=pull_id)
    context = {
        "run": run,
        "source": run.source,
        "active": run.state in (RunState.QUEUED, RunState.RUNNING),
        "counts": sorted(run.counts.items()),
    }
    return render(request, "integrations/warehouse_pull.html", context)
