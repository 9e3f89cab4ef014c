"""Analysis pages for the monthly review: attribution of usage to product releases and
pilot reports (docs/metrics.md#review-attribution, #review-pilots).

Each view checks the role, validates its query parameters with a form, calls one
selector (``reviews.attribution`` / ``reviews.pilots``) and renders. GET only.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.models import Segment
from comp.models import Plan, PlanType
from reviews import analysis_charts, attribution, pilots, services
from usage.models import ProductRelease


def _require_analyst(request: HttpRequest) -> None:
    if not services.can_analyse(request.user):
        raise PermissionDenied


@require_GET
def releases(request: HttpRequest) -> HttpResponse:
    _require_analyst(request)
    rows = ProductRelease.objects.prefetch_related("meters").order_by("-released_on", "name")
    return render(request, "reviews/attribution_index.html", {"releases": rows})


WINDOW_MESSAGE = (
    f"The window must be a whole number of days from {attribution.MIN_WINDOW_DAYS} to {attribution.MAX_WINDOW_DAYS}."
)


class AttributionForm(forms.Form):
    window = forms.IntegerField(
        label="Window (days each side)",
        required=False,
        min_value=attribution.MIN_WINDOW_DAYS,
        max_value=attribution.MAX_WINDOW_DAYS,
        help_text=f"{attribution.MIN_WINDOW_DAYS}–{attribution.MAX_WINDOW_DAYS}; default {attribution.DEFAULT_WINDOW_DAYS}.",
        error_messages={"invalid": WINDOW_MESSAGE, "min_value": WINDOW_MESSAGE, "max_value": WINDOW_MESSAGE},
        widget=forms.NumberInput(attrs={"placeholder": str(attribution.DEFAULT_WINDOW_DAYS)}),
    )
    segment = forms.ChoiceField(choices=[("", "All segments"), *Segment.choices], required=False)


@require_GET
def release_attribution(request: HttpRequest, release_id: int) -> HttpResponse:
    _require_analyst(request)
    release = get_object_or_404(ProductRelease, pk=release_id)
    form = AttributionForm(request.GET)
    context: dict = {"release": release, "form": form}
    if form.is_valid():
        window = form.cleaned_data["window"] or attribution.DEFAULT_WINDOW_DAYS
        result = attribution.release_attribution(release, window_days=window, segment=form.cleaned_data["segment"])
        context.update(result=result, figure=analysis_charts.attribution_figure(result.as_dict()))
    return render(request, "reviews/attribution.html", context)


@require_GET
def pilot_plans(request: HttpRequest) -> HttpResponse:
    _require_analyst(request)
    rows = [
        {"plan": plan, "version": version, "params": version.parameters if version else {}}
        for plan, version in pilots.pilot_plans()
    ]
    return render(request, "reviews/pilots.html", {"rows": rows})


@require_GET
def pilot_report(request: HttpRequest, plan_id: int) -> HttpResponse:
    _require_analyst(request)
    plan = get_object_or_404(Plan, pk=plan_id, type=PlanType.PILOT)
    report = pilots.pilot_report(plan)
    return render(request, "reviews/pilot.html", {"plan": plan, "report": report})
