"""Compensation plan pages: list, detail, upload (the importer) and YAML download.

Finance and admins manage plans; leaders may read them (they see every statement, so
they may see the terms behind them). Everyone else gets 403, decided here on the server.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from comp.forms import PlanUploadForm
from comp.models import Plan
from comp.plans import MAX_BYTES, PlansRejected, describe, plan_assignments, plan_list, plan_yaml, plans_import
from revops.models import Role

PLAN_READERS = frozenset({Role.FINANCE, Role.ADMIN, Role.LEADER})
PLAN_MANAGERS = frozenset({Role.FINANCE, Role.ADMIN})


def can_read_plans(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role in PLAN_READERS)


def can_manage_plans(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role in PLAN_MANAGERS)


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _get_plan_for_user(user, plan_id: int) -> Plan:
    _require(can_read_plans(user))
    return get_object_or_404(plan_list(), pk=plan_id)


@require_GET
def plans(request: HttpRequest) -> HttpResponse:
    _require(can_read_plans(request.user))
    context = {"plans": plan_list(), "can_manage": can_manage_plans(request.user)}
    return render(request, "comp/plans.html", context)


@require_GET
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = _get_plan_for_user(request.user, plan_id)
    versions = []
    today = timezone.localdate()
    for version in plan.versions.all():  # oldest first: the last one started is in effect
        version.parameters_json = json.dumps(version.parameters, indent=2)
        versions.append((version, describe(plan.type, version.parameters)))
    in_effect = [version for version, _ in versions if version.effective_from <= today]
    context = {
        "plan": plan,
        "versions": versions,
        "in_effect": in_effect[-1] if in_effect else None,
        "assignments": plan_assignments(plan),
        "can_manage": can_manage_plans(request.user),
    }
    return render(request, "comp/plan_detail.html", context)


@require_GET
def plan_download(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = _get_plan_for_user(request.user, plan_id)
    response = HttpResponse(plan_yaml(plan), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slugify(plan.name) or "plan"}.yaml"'
    return response


@require_http_methods(["GET", "POST"])
def plan_upload(request: HttpRequest) -> HttpResponse:
    _require(can_manage_plans(request.user))
    form = PlanUploadForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            form.add_error("file", f"The file is larger than {MAX_BYTES // 1_000_000} MB.")
        else:
            try:
                result = plans_import(data=upload.read(), filename=upload.name, user=request.user)
            except PlansRejected as exc:
                report = exc.report
            else:
                s = result.summary
                messages.success(
                    request,
                    f"{upload.name} imported: {s['plans_created']} plan(s) created, "
                    f"{s['versions_created']} version(s) created ({s['versions_unchanged']} unchanged), "
                    f"{s['assignments_created']} assignment(s) created ({s['assignments_unchanged']} unchanged).",
                )
                return redirect("comp:plans")
    return render(request, "comp/plan_upload.html", {"form": form, "report": report})
