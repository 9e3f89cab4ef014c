"""Plan what-if pages (Plans → What-if): drafts, their replays over past months, and
publishing a draft as the plan's next version.

Finance and admins only, as they manage plans; everyone else gets 403. The replay runs as
a Celery job (``comp.tasks.run_whatif``); its page polls with htmx until it is done.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from comp.models import Plan, PlanDraft, WhatIfRun
from comp.plans import MAX_BYTES, PlansRejected, describe
from comp.views.plans import _require, can_manage_plans
from comp.whatif import (
    DEFAULT_MONTHS,
    MAX_MONTHS,
    TITLE_MAX,
    draft_check,
    draft_create,
    draft_document,
    draft_list,
    draft_publish,
    draft_runs,
    draft_token,
    draft_update,
    run_stalled,
    whatif_run_create,
)
from revops.errors import ApplicationError

PEOPLE_PER_PAGE = 50
SORTS = {
    "difference": ("difference", True),
    "pct": ("pct", True),
    "actual": ("actual", True),
    "draft": ("draft", True),
    "name": ("name", False),
}


class DraftForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX, help_text="What the draft tries, e.g. “Expand at 12%”.")
    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        max_length=MAX_BYTES,
        strip=False,
        help_text="The plan document: one version per plan it changes, no assignments.",
    )


class RunForm(forms.Form):
    months = forms.IntegerField(
        min_value=1,
        max_value=MAX_MONTHS,
        initial=DEFAULT_MONTHS,
        help_text=f"Complete months replayed, up to the last one (1 to {MAX_MONTHS}).",
    )


class PublishForm(forms.Form):
    token = forms.CharField(max_length=40, widget=forms.HiddenInput)


def _get_draft_for_user(user, draft_id: int) -> PlanDraft:
    _require(can_manage_plans(user))
    return get_object_or_404(PlanDraft.objects.select_related("based_on", "created_by", "published_by"), pk=draft_id)


def _versions_in_words(document: str) -> list[dict]:
    _, versions = draft_check(document)
    return [
        {"plan": v.plan, "effective_from": v.effective_from, "clauses": describe(v.plan.type, v.parameters)}
        for v in versions
    ]


@require_GET
def whatif_index(request: HttpRequest) -> HttpResponse:
    _require(can_manage_plans(request.user))
    context = {"drafts": draft_list(), "plans": Plan.objects.order_by("name")}
    return render(request, "comp/whatif.html", context)


@require_http_methods(["GET", "POST"])
def whatif_new(request: HttpRequest) -> HttpResponse:
    _require(can_manage_plans(request.user))
    plan = None
    raw = request.POST.get("plan") if request.method == "POST" else request.GET.get("plan")
    if raw and raw.isascii() and raw.isdigit() and len(raw) < 19:
        plan = Plan.objects.filter(pk=int(raw)).first()
    report = None
    if request.method == "POST":
        form = DraftForm(request.POST)
        if form.is_valid():
            try:
                draft = draft_create(
                    title=form.cleaned_data["title"],
                    document=form.cleaned_data["document"],
                    based_on=plan,
                    user=request.user,
                )
            except PlansRejected as exc:
                report = exc.report
            except ApplicationError as exc:
                form.add_error("title", exc.message)
            else:
                messages.success(request, f"Draft “{draft.title}” saved. Run it over past months to see what changes.")
                return redirect("comp:whatif_draft", draft.pk)
    else:
        initial = {}
        if plan is not None:
            try:
                initial = {"title": f"{plan.name}: what-if", "document": draft_document(plan)}
            except ApplicationError as exc:
                messages.error(request, exc.message)
        form = DraftForm(initial=initial)
    context = {
        "form": form,
        "report": report,
        "report_title": "The draft was not saved",
        "plan": plan,
        "plans": Plan.objects.order_by("name"),
    }
    return render(request, "comp/whatif_draft.html", context)


def _draft_page(request: HttpRequest, draft: PlanDraft, **context) -> HttpResponse:
    context.setdefault("form", DraftForm(initial={"title": draft.title, "document": draft.document}))
    context.setdefault("run_form", RunForm())
    context.setdefault("report_title", "The draft was not saved")
    context |= {
        "draft": draft,
        "versions": _versions_in_words(draft.document),
        "runs": draft_runs(draft),
        "publish_form": PublishForm(initial={"token": draft_token(draft)}),
    }
    return render(request, "comp/whatif_draft.html", context)


@require_http_methods(["GET", "POST"])
def whatif_draft(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request.user, draft_id)
    if request.method == "GET":
        return _draft_page(request, draft)
    form = DraftForm(request.POST)
    report = None
    if form.is_valid():
        try:
            draft_update(draft=draft, title=form.cleaned_data["title"], document=form.cleaned_data["document"])
        except PlansRejected as exc:
            report = exc.report
        except ApplicationError as exc:
            form.add_error("title", exc.message)
        else:
            messages.success(request, f"Draft “{draft.title}” saved.")
            return redirect("comp:whatif_draft", draft.pk)
    draft.refresh_from_db()
    return _draft_page(request, draft, form=form, report=report)


@require_POST
def whatif_run_new(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request.user, draft_id)
    form = RunForm(request.POST)
    if not form.is_valid():
        return _draft_page(request, draft, run_form=form)
    try:
        run = whatif_run_create(draft=draft, months=form.cleaned_data["months"], user=request.user)
    except PlansRejected as exc:
        return _draft_page(request, draft, report=exc.report, report_title="The draft cannot be run")
    except ApplicationError as exc:
        form.add_error("months", exc.message)
        return _draft_page(request, draft, run_form=form)
    messages.success(request, f"What-if of “{draft.title}” over {run.months} months queued.")
    return redirect("comp:whatif_run", run.pk)


@require_POST
def whatif_publish(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request.user, draft_id)
    form = PublishForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was published: open the draft and use its Publish button.")
        return redirect("comp:whatif_draft", draft.pk)
    try:
        versions = draft_publish(draft=draft, token=form.cleaned_data["token"], user=request.user)
    except PlansRejected as exc:
        return _draft_page(request, draft, report=exc.report, report_title="Nothing was published")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("comp:whatif_draft", draft.pk)
    words = ", ".join(f"{v.plan.name} v{v.version} from {v.effective_from:%Y-%m-%d}" for v in versions)
    messages.success(request, f"Published “{draft.title}”: {words}.")
    return redirect("comp:plan_detail", versions[0].plan_id)


def _sorted_people(rows: list[dict], sort: str) -> list[dict]:
    field, descending = SORTS[sort]
    if field == "name":
        return sorted(rows, key=lambda r: r["name"].lower())
    if field == "difference":
        return sorted(rows, key=lambda r: (-abs(Decimal(r["difference"])), r["name"]))

    def value(row: dict) -> Decimal:
        return Decimal(row[field]) if row[field] is not None else Decimal("-Infinity")

    return sorted(rows, key=value, reverse=descending)


@require_GET
def whatif_run(request: HttpRequest, run_id: int) -> HttpResponse:
    _require(can_manage_plans(request.user))
    run = get_object_or_404(WhatIfRun.objects.select_related("draft__based_on", "created_by"), pk=run_id)
    context: dict = {"run": run, "stalled": run_stalled(run)}
    result = run.result if run.status == WhatIfRun.Status.SUCCEEDED else {}
    if result:
        sort = request.GET.get("sort", "difference")
        sort = sort if sort in SORTS else "difference"
        page = Paginator(_sorted_people(result["people"], sort), PEOPLE_PER_PAGE).get_page(request.GET.get("page"))
        person = None
        raw = request.GET.get("person", "")
        if raw.isascii() and raw.isdigit():
            person = next((r for r in result["people"] if str(r["person_id"]) == raw), None)
        if person is not None:
            pid = person["person_id"]
            person = {
                **person,
                "months": [r for r in result["person_months"] if r["person_id"] == pid],
                "kinds": [r for r in result["person_kinds"] if r["person_id"] == pid],
            }
        context |= {
            "result": result,
            "page": page,
            "sort": sort,
            "person": person,
            "distribution_max": max((b["people"] for b in result["distribution"]), default=0) or 1,
            "changed_draft": run.document != run.draft.document,
        }
    template = "comp/whatif_run.html#run-status" if request.htmx else "comp/whatif_run.html"
    response = render(request, template, context)
    if request.htmx and run.status in (WhatIfRun.Status.SUCCEEDED, WhatIfRun.Status.FAILED):
        response["HX-Redirect"] = reverse("comp:whatif_run", args=[run.pk])  # the whole page, with the result
    return response
