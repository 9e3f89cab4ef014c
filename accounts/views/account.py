"""The account page: a shell with the panels accounts owns (facts, hierarchy, owners,
contracts, activities, plan). Usage renders its own panels (``usage.views.panels``),
which the shell fetches with ``hx-get`` on load."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import account_for, accounts_visible_to
from accounts.forms import AccountPlanForm, ActivityForm
from accounts.models import Account, AccountPlan
from accounts.selectors import account_page, account_plan, activity_page, user_can_edit_plan
from accounts.services import account_plan_update, activity_log
from revops.errors import ApplicationError
from revops.idempotency import AlreadySubmitted, token_from

TEMPLATE = "accounts/account.html"


def _account(request: HttpRequest, external_id: str) -> Account:
    """The account if the viewer may see it today; 404 otherwise."""
    return account_for(request.user, external_id, on=timezone.localdate())


def _shell(
    request: HttpRequest,
    account: Account,
    *,
    visible: QuerySet[Account] | None = None,
    activity_form: ActivityForm | None = None,
    plan_form: AccountPlanForm | None = None,
    status: int = 200,
) -> HttpResponse:
    today = timezone.localdate()
    if visible is None:
        visible = accounts_visible_to(request.user, on=today)
    page = account_page(account=account, viewer=request.user, visible=visible, on=today)
    as_of = request.GET.get("as_of", "")
    context = {
        "page": page,
        "account": account,
        "today": today,
        "activities": activity_page(account=account, number=request.GET.get("page")),
        "activity_form": activity_form or ActivityForm(today=today),
        "plan": page.plan,
        "can_edit_plan": page.can_edit_plan,
        "plan_form": plan_form,
        "panel_query": f"?{urlencode({'as_of': as_of})}" if as_of else "",
    }
    return render(request, TEMPLATE, context, status=status)


@require_GET
def account_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    # account_for's check, with the visible set kept for the hierarchy (one computation).
    visible = accounts_visible_to(request.user, on=timezone.localdate())
    account = get_object_or_404(visible, external_id=external_id)
    plan_form = None
    if request.GET.get("edit") == "plan" and user_can_edit_plan(
        user=request.user, account=account, on=timezone.localdate()
    ):
        plan_form = AccountPlanForm(instance=account_plan(account=account) or AccountPlan(account=account))
    return _shell(request, account, visible=visible, plan_form=plan_form)


@require_http_methods(["GET", "POST"])
def activities(request: HttpRequest, external_id: str) -> HttpResponse:
    """GET: one page of activities (the fragment, or the whole page without htmx).
    POST: log a conversation as the signed-in person; htmx gets the fresh form plus the
    new activity prepended out of band, everyone else a redirect back to the page."""
    account = _account(request, external_id)
    if request.method == "GET":
        if not request.htmx:
            query = urlencode({"page": request.GET.get("page", "1")})
            return redirect(f"{reverse('accounts:account', args=[account.external_id])}?{query}#activities")
        context = {"account": account, "activities": activity_page(account=account, number=request.GET.get("page"))}
        return render(request, f"{TEMPLATE}#activity-list", context)

    today = timezone.localdate()
    form = ActivityForm(request.POST, today=today)
    activity = None
    repeated = False
    if form.is_valid():
        try:
            activity = activity_log(
                account=account,
                person=request.user,
                occurred_on=form.cleaned_data["occurred_on"],
                kind=form.cleaned_data["kind"],
                notes=form.cleaned_data["notes"],
                tags=form.cleaned_data["tags"],
                today=today,
                submission=token_from(request.POST),
            )
        except AlreadySubmitted:
            repeated = True  # logged by the first of two identical posts: show it as done
        except ApplicationError as exc:
            field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
            form.add_error(field if field in form.fields else None, exc.message)
    done = activity is not None or repeated
    if activity is not None:
        messages.success(request, f"Logged: {activity.get_kind_display().lower()} on {activity.occurred_on:%b %-d}.")
    if not request.htmx:
        if not done:
            return _shell(request, account, activity_form=form, status=422)
        return redirect(f"{reverse('accounts:account', args=[account.external_id])}#activities")
    context = {
        "account": account,
        "activity_form": ActivityForm(today=today) if done else form,
        "new_activity": activity,
    }
    # Errors come back with 200 so htmx swaps the form with its messages in place.
    return render(request, f"{TEMPLATE}#activity-form", context)


@require_http_methods(["GET", "POST"])
def plan(request: HttpRequest, external_id: str) -> HttpResponse:
    """GET: the plan card (``?edit=1`` the form, for its editors). POST: save it.
    Editing is for the account's current land AE, expand AE or CSM and admins (403)."""
    account = _account(request, external_id)
    today = timezone.localdate()
    can_edit = user_can_edit_plan(user=request.user, account=account, on=today)
    current = account_plan(account=account)
    editing = request.method == "POST" or request.GET.get("edit") == "1"
    if editing and not can_edit:
        raise PermissionDenied("Only the account's current owners can edit its plan.")
    if not request.htmx and request.method == "GET":
        suffix = "?edit=plan#plan" if editing else "#plan"
        return redirect(reverse("accounts:account", args=[account.external_id]) + suffix)

    form = None
    if request.method == "POST":
        form = AccountPlanForm(request.POST, instance=current or AccountPlan(account=account))
        if form.is_valid():
            try:
                current = account_plan_update(
                    account=account,
                    updated_by=request.user,
                    usage_baseline=form.cleaned_data["usage_baseline"],
                    growth_target=form.growth_target,
                    expansion_opportunities=form.cleaned_data["expansion_opportunities"],
                    value_realization=form.cleaned_data["value_realization"],
                    stakeholders=form.cleaned_data["stakeholders"],
                    risks=form.cleaned_data["risks"],
                    next_review_on=form.cleaned_data["next_review_on"],
                )
            except ApplicationError as exc:
                field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
                field = "growth_target_pct" if field == "growth_target" else field
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                form = None
                messages.success(request, f"Account plan for {account.name} saved.")
                if not request.htmx:
                    return redirect(reverse("accounts:account", args=[account.external_id]) + "#plan")
        if form is not None and not request.htmx:
            return _shell(request, account, plan_form=form, status=422)
    elif editing:
        form = AccountPlanForm(instance=current or AccountPlan(account=account))
    context = {"account": account, "plan": current, "can_edit_plan": can_edit, "plan_form": form}
    return render(request, f"{TEMPLATE}#plan", context)
