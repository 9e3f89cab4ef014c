"""Pages of the monthly review: the list, one review (and its print version), and the forms
that fill it in. Thin: each view checks who may act (``services.can_*``), validates with a
form and calls one service; a refused change re-renders the form with the reason."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviews import charts, forms, presenters, services, snapshot
from reviews.models import ActionItem, ProductDecision, Review, SalesPattern


def _month(value: str) -> dt.date:
    if not forms.MONTH.fullmatch(value):
        raise Http404("No such review.")
    try:
        return dt.date(int(value[:4]), int(value[5:]), 1)
    except ValueError:
        raise Http404("No such review.") from None


def _review(request: HttpRequest, month: str) -> Review:
    review = services.readable_reviews(request.user).filter(month=_month(month)).first()
    if review is None:
        raise Http404("No such review.")
    return review


def _errors(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [m for messages_ in error.message_dict.values() for m in messages_]
    return list(error.messages)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    reviews = services.readable_reviews(request.user).select_related("opened_by", "finalized_by")
    context = {
        "reviews": reviews,
        "can_open": services.can_open(request.user),
        "open_form": forms.OpenReviewForm(initial={"month": services.today_utc().strftime("%Y-%m")}),
    }
    return render(request, "reviews/index.html", context)


@require_POST
def open_review(request: HttpRequest) -> HttpResponse:
    if not services.can_open(request.user):
        raise PermissionDenied
    form = forms.OpenReviewForm(request.POST)
    if form.is_valid():
        try:
            review = services.open_review(form.cleaned_data["month"], request.user)
        except ValidationError as error:
            for message in _errors(error):
                form.add_error("month", message)
        else:
            messages.success(
                request, f"The {review.label} review is open; its numbers are frozen as of {review.as_of}."
            )
            return redirect("reviews:detail", month=f"{review.month:%Y-%m}")
    reviews = services.readable_reviews(request.user)
    return render(request, "reviews/index.html", {"reviews": reviews, "can_open": True, "open_form": form}, status=400)


def _detail_context(request: HttpRequest, review: Review) -> dict:
    user = request.user
    decisions = list(review.decisions.all())
    for decision in decisions:
        decision.figures = charts.decision_figures(decision)
        decision.partial_month = presenters.evidence_partial(decision.evidence)
    metric_columns, metric_rows = presenters.metrics_table(review.snapshot)
    forecast, forecast_found_later = snapshot.review_forecast(review)
    patterns = list(review.patterns.all())
    return {
        "review": review,
        "s": review.snapshot,
        "forecast": forecast,
        "forecast_found_later": forecast_found_later,
        "forecast_cutoff": snapshot.month_end(review.month),
        # Cited accounts link to their page only for readers that page would show them to.
        "linked_accounts": services.linkable_accounts(user, review, patterns),
        "metric_columns": metric_columns,
        "metric_rows": metric_rows,
        "waterfall_figure": charts.review_waterfall(review),
        "patterns": patterns,
        "decisions": decisions,
        "actions": list(review.actions.select_related("carried_from__review").all()),
        "can_edit_sales": services.can_edit_sales(user, review),
        "can_edit_product": services.can_edit_product(user, review),
        "can_edit_actions": services.can_edit_actions(user, review),
        "can_finalize": services.can_finalize(user, review),
        "can_analyse": services.can_analyse(user),
        "problems": [] if review.is_final else services.finalize_problems(review),
        "action_form": forms.ActionForm(),
        "finalize_form": forms.FinalizeForm(),
        "status_choices": forms.ActionStatus.choices,
    }


@require_GET
def detail(request: HttpRequest, month: str) -> HttpResponse:
    review = _review(request, month)
    return render(request, "reviews/detail.html", _detail_context(request, review))


@require_GET
def print_view(request: HttpRequest, month: str) -> HttpResponse:
    review = _review(request, month)
    return render(request, "reviews/print.html", _detail_context(request, review))


def _item_form(
    request: HttpRequest,
    month: str,
    *,
    model,
    form_class,
    allowed,
    save,
    initial_from,
    template: str,
    pk: int | None,
) -> HttpResponse:
    """Add or edit a pattern or a decision: the shared GET/POST loop."""
    review = _review(request, month)
    if not allowed(request.user, review):
        raise PermissionDenied
    item = get_object_or_404(model, pk=pk, review=review) if pk else None
    if request.method == "POST":
        form = form_class(request.POST, review=review)
        if form.is_valid():
            try:
                save(review, request.user, form.cleaned_data, item)
            except ValidationError as error:
                for message in _errors(error):
                    form.add_error(None, message)
            else:
                return redirect("reviews:detail", month=month)
    else:
        form = form_class(initial=initial_from(item) if item else None, review=review)
    return render(request, template, {"review": review, "form": form, "item": item}, status=400 if form.errors else 200)


def _save_pattern(review, user, data, item):
    return services.save_pattern(
        review,
        user,
        title=data["title"],
        detail=data["detail"],
        activities=list(data["activities"]),
        accounts=data["extra_accounts"],
        pattern=item,
    )


def _pattern_initial(item: SalesPattern) -> dict:
    cited = {a.account_id for a in item.activities.all()}
    return {
        "title": item.title,
        "detail": item.detail,
        "activities": list(item.activities.all()),
        "extra_accounts": ", ".join(a.external_id for a in item.accounts.exclude(pk__in=cited)),
    }


@require_http_methods(["GET", "POST"])
def pattern_form(request: HttpRequest, month: str, pk: int | None = None) -> HttpResponse:
    return _item_form(
        request,
        month,
        model=SalesPattern,
        form_class=forms.PatternForm,
        allowed=services.can_edit_sales,
        save=_save_pattern,
        initial_from=_pattern_initial,
        template="reviews/pattern_form.html",
        pk=pk,
    )


def _save_decision(review, user, data, item):
    return services.save_decision(
        review,
        user,
        title=data["title"],
        rationale=data["rationale"],
        meters=list(data["meters"]),
        features=data["features"],
        releases=list(data["releases"]),
        window_days=data["window_days"],
        decision=item,
    )


def _decision_initial(item: ProductDecision) -> dict:
    return {
        "title": item.title,
        "rationale": item.rationale,
        "meters": list(item.meters.all()),
        "features": item.features,
        "releases": list(item.releases.all()),
        "window_days": item.window_days,
    }


@require_http_methods(["GET", "POST"])
def decision_form(request: HttpRequest, month: str, pk: int | None = None) -> HttpResponse:
    return _item_form(
        request,
        month,
        model=ProductDecision,
        form_class=forms.DecisionForm,
        allowed=services.can_edit_product,
        save=_save_decision,
        initial_from=_decision_initial,
        template="reviews/decision_form.html",
        pk=pk,
    )


@require_POST
def remove(request: HttpRequest, month: str, kind: str, pk: int) -> HttpResponse:
    review = _review(request, month)
    model = {"patterns": SalesPattern, "decisions": ProductDecision, "actions": ActionItem}.get(kind)
    if model is None:
        raise Http404
    item = get_object_or_404(model, pk=pk, review=review)
    try:
        services.remove_item(review, request.user, item)
    except ValidationError as error:
        for message in _errors(error):
            messages.error(request, message)
    return redirect("reviews:detail", month=month)


@require_POST
def add_action(request: HttpRequest, month: str) -> HttpResponse:
    review = _review(request, month)
    if not services.can_edit_actions(request.user, review):
        raise PermissionDenied
    form = forms.ActionForm(request.POST)
    if form.is_valid():
        try:
            services.add_action(review, request.user, **form.cleaned_data)
        except ValidationError as error:
            for message in _errors(error):
                form.add_error(None, message)
        else:
            return redirect("reviews:detail", month=month)
    context = _detail_context(request, review) | {"action_form": form}
    return render(request, "reviews/detail.html", context, status=400)


@require_POST
def action_status(request: HttpRequest, month: str, pk: int) -> HttpResponse:
    review = _review(request, month)
    item = get_object_or_404(ActionItem.objects.select_related("carried_from__review"), pk=pk, review=review)
    form = forms.ActionStatusForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose a status: open, done or dropped."
    else:
        note = form.cleaned_data["note"] if "note" in request.POST else None
        try:
            services.set_action_status(review, request.user, item, status=form.cleaned_data["status"], note=note)
        except ValidationError as refused:
            error = " ".join(_errors(refused))
    if request.htmx:
        item.refresh_from_db()
        context = {
            "review": review,
            "item": item,
            "row_error": error,
            "can_edit_actions": services.can_edit_actions(request.user, review),
            "status_choices": forms.ActionStatus.choices,
        }
        return render(request, "reviews/_review_body.html#action-row", context)
    if error:
        messages.error(request, error)
    return redirect("reviews:detail", month=month)


@require_POST
def finalize(request: HttpRequest, month: str) -> HttpResponse:
    review = _review(request, month)
    if not services.can_finalize(request.user, review):
        raise PermissionDenied
    form = forms.FinalizeForm(request.POST)
    form.is_valid()
    try:
        services.finalize(review, request.user, summary=form.cleaned_data.get("summary", ""))
    except ValidationError as error:
        for message in _errors(error):
            messages.error(request, message)
    else:
        messages.success(request, f"The {review.label} review is final; it now reads exactly as it is.")
    return redirect("reviews:detail", month=month)
