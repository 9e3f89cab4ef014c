"""Analysis pages for the monthly review: the product managers' usage and adoption page,
attribution of usage to product releases and pilot reports (docs/metrics.md#review-product,
#review-attribution, #review-pilots).

Each view checks the role, validates its query parameters with a form, calls its
selectors (``reviews.product`` / ``reviews.attribution`` / ``reviews.pilots``) and renders.
GET only.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.models import Segment
from comp.models import Plan, PlanType
from reviews import analysis_charts, attribution, pilots, product, services
from usage.models import ProductRelease


def _require_analyst(request: HttpRequest) -> None:
    if not services.can_analyse(request.user):
        raise PermissionDenied


MONTHS_MESSAGE = f"Show a whole number of months from {product.MIN_MONTHS} to {product.MAX_MONTHS}."


class ProductForm(forms.Form):
    months = forms.IntegerField(
        label="Months",
        required=False,
        min_value=product.MIN_MONTHS,
        max_value=product.MAX_MONTHS,
        help_text=f"Calendar months to show, the last one the newest with usage; default {product.DEFAULT_MONTHS}.",
        error_messages={"invalid": MONTHS_MESSAGE, "min_value": MONTHS_MESSAGE, "max_value": MONTHS_MESSAGE},
        widget=forms.NumberInput(attrs={"placeholder": str(product.DEFAULT_MONTHS)}),
    )


@require_GET
def product_page(request: HttpRequest) -> HttpResponse:
    """Usage and adoption by meter and feature over time, and the latest releases' verdicts."""
    _require_analyst(request)
    form = ProductForm(request.GET)
    context: dict = {"form": form, "as_of": product.latest_usage_day()}
    if form.is_valid() and context["as_of"]:
        as_of = context["as_of"]
        usage = product.product_usage(as_of=as_of, months=form.cleaned_data["months"] or product.DEFAULT_MONTHS)
        context.update(
            usage=usage,
            figures=analysis_charts.product_figures(usage),
            verdicts=product.latest_release_verdicts(as_of=as_of),
            default_window=attribution.DEFAULT_WINDOW_DAYS,
        )
    return render(request, "reviews/product.html", context)


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
        result = attribution.cached_release_attribution(
            release, window_days=window, segment=form.cleaned_data["segment"]
        )
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
