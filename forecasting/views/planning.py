"""Planning pages for finance and leaders: cohort ramps, the deal desk estimate, the
realization waterfall with the stacked target (docs/metrics.md, "Forecasting").

Each view checks the role, validates its query parameters with a form, calls the
selectors in ``cohorts`` / ``waterfall`` and the pure functions over them, and renders.
Everything is a GET: these pages read, they never write.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Contract, Segment
from forecasting import cache as planning_cache
from forecasting import cohorts as cohort_analysis
from forecasting import planning_charts
from forecasting import waterfall as realization
from forecasting.dealdesk import MIN_SIMILAR, Plan, deal_desk_plan
from revops.models import Role
from usage.models import DailyRollup

PLANNING_ROLES = frozenset({Role.FINANCE, Role.LEADER, Role.ADMIN})
DEFAULT_GROWTH_PERCENT = Decimal(20)


def _require_planner(request: HttpRequest) -> None:
    if request.user.role not in PLANNING_ROLES:
        raise PermissionDenied


def _as_of() -> dt.date:
    """The latest day with usage (the data's "today"); the calendar day when there is none."""
    latest = DailyRollup.objects.aggregate(day=Max("day"))["day"]
    return latest or timezone.now().astimezone(dt.UTC).date()


@require_GET
def cohorts(request: HttpRequest) -> HttpResponse:
    _require_planner(request)
    as_of = _as_of()
    trajectories = planning_cache.land_trajectories(as_of=as_of)
    ramps = planning_cache.segment_ramps(as_of=as_of)
    labels = dict(Segment.choices)
    context = {
        "as_of": as_of,
        "ramps": ramps,
        "ramp_rows": [
            (
                labels.get(segment, segment),
                ramp,
                cohort_analysis.suggest_ramp(
                    ramp, segment_label=labels.get(segment, segment), term_days=cohort_analysis.DEFAULT_TERM_DAYS
                ),
            )
            for segment, ramp in ramps.items()
        ],
        "cohorts": [(labels.get(c.segment, c.segment), c) for c in cohort_analysis.cohorts(trajectories)],
        "min_ramp_accounts": cohort_analysis.MIN_RAMP_ACCOUNTS,
        "default_ramp_days": cohort_analysis.DEFAULT_RAMP_DAYS,
        "term_days": cohort_analysis.DEFAULT_TERM_DAYS,
        "figure": planning_charts.cohort_figure(ramps),
        "threshold": cohort_analysis.LEVEL_OFF_GROWTH,
        "hold": cohort_analysis.LEVEL_OFF_HOLD,
        "min_accounts": cohort_analysis.MIN_ACCOUNTS,
        "max_months": cohort_analysis.MAX_MONTHS,
    }
    return render(request, "forecasting/planning_cohorts.html", context)


class DealDeskForm(forms.Form):
    """A planned contract by its external id, or its segment, industry and committed ARR typed in.

    With a contract, its account's segment and industry, its committed ARR and its term come
    from the contract (so an estimate stored on it is for that contract, whatever the form
    held before), and its AE estimate fills a blank AE estimate.
    """

    contract = forms.CharField(
        max_length=100,
        required=False,
        label="Contract",
        help_text="Optional: a planned contract's external id. Its account's segment and industry, its "
        "committed ARR, term and AE estimate are used, and the estimate can be stored on it.",
    )
    segment = forms.ChoiceField(choices=[("", "Choose, or give a contract"), *Segment.choices], required=False)
    industry = forms.CharField(
        max_length=80,
        required=False,
        widget=forms.TextInput(attrs={"list": "industries"}),
        help_text="Same industry is preferred when possible.",
    )
    committed_arr = forms.DecimalField(
        label="Committed ARR", max_digits=16, decimal_places=2, min_value=Decimal("1000"), required=False
    )
    term_months = forms.IntegerField(
        label="Term (months)",
        min_value=1,
        max_value=120,
        required=False,
        help_text="Default 12; a contract's own term when one is given. The suggested ramp never exceeds it.",
    )
    ae_estimate = forms.DecimalField(
        label="AE's first-year estimate", max_digits=16, decimal_places=2, min_value=Decimal(0), required=False
    )

    def __init__(self, data=None, *args, **kwargs) -> None:
        self.planned: Contract | None = None
        if data is not None:
            data = data.copy()
            external_id = (data.get("contract") or "").strip()
            self.planned = (
                Contract.objects.select_related("account").filter(external_id=external_id).first()
                if external_id
                else None
            )
            if self.planned is not None:
                for name, value in _contract_values(self.planned, ae_estimate=data.get("ae_estimate")).items():
                    data[name] = value  # replaces (QueryDict.update would append)
        super().__init__(data, *args, **kwargs)

    def clean_contract(self) -> Contract | None:
        external_id = self.cleaned_data["contract"].strip()
        if external_id and self.planned is None:
            raise forms.ValidationError(f"No contract with external id {external_id[:100]!r}.")
        return self.planned

    def clean(self) -> dict:
        data = super().clean()
        if self.planned is None and "contract" not in self.errors:
            if not data.get("segment"):
                self.add_error("segment", "Choose a segment, or give a contract.")
            if data.get("committed_arr") is None and "committed_arr" not in self.errors:
                self.add_error("committed_arr", "Enter the planned committed ARR, or give a contract.")
        if self.planned is not None:
            data["term_days"] = (self.planned.end_on - self.planned.start_on).days + 1
        else:
            months = data.get("term_months") or 12
            data["term_days"] = round(months * 365 / 12)
        return data


def _contract_values(contract: Contract, *, ae_estimate: str | None) -> dict[str, str]:
    """The form's fields as the planned contract has them (a typed AE estimate stays)."""
    term_days = (contract.end_on - contract.start_on).days + 1
    return {
        "contract": contract.external_id,
        "segment": contract.account.segment,
        "industry": contract.account.industry,
        "committed_arr": str(contract.committed_arr),
        "term_months": str(max(1, round(term_days * 12 / 365))),
        "ae_estimate": ae_estimate or ("" if contract.ae_estimate is None else str(contract.ae_estimate)),
    }


def _plan_for(form: DealDeskForm, trajectories) -> Plan:
    data = form.cleaned_data
    return deal_desk_plan(
        trajectories,
        segment=data["segment"],
        industry=data["industry"],
        committed_arr=data["committed_arr"],
        term_days=data["term_days"],
    )


@require_GET
def deal_desk(request: HttpRequest) -> HttpResponse:
    _require_planner(request)
    as_of = _as_of()
    form = DealDeskForm(request.GET or None)
    trajectories = planning_cache.land_trajectories(as_of=as_of)
    plan = _plan_for(form, trajectories) if form.is_bound and form.is_valid() else None
    estimate = plan.estimate if plan else None
    ae_estimate = form.cleaned_data.get("ae_estimate") if plan else None
    context = {
        "as_of": as_of,
        "form": form,
        "estimate": estimate,
        "ramp": plan.ramp if plan else None,
        "segment_label": dict(Segment.choices).get(form.cleaned_data.get("segment"), "") if plan else "",
        "ae_estimate": ae_estimate,
        "ae_difference": ae_estimate - estimate.expected if ae_estimate is not None and estimate.expected else None,
        "industries": sorted({t.industry for t in trajectories if t.industry}),
        "min_similar": MIN_SIMILAR,
        "contract": form.cleaned_data.get("contract") if plan else None,
        "term_days": form.cleaned_data.get("term_days") if plan else None,
        "can_store": request.user.role in STORE_ROLES,
    }
    return render(request, "forecasting/planning_deal_desk.html", context)


STORE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})


@require_POST
def deal_desk_store(request: HttpRequest) -> HttpResponse:
    """Store the deal desk's estimate (recomputed here, never taken from the browser), the AE's
    estimate and the suggested ramp window on the planned contract."""
    if request.user.role not in STORE_ROLES:
        raise PermissionDenied
    form = DealDeskForm(request.POST)
    if not form.is_valid() or form.cleaned_data["contract"] is None:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()) or "contract: choose a contract."
        messages.error(request, f"Nothing stored. {errors}")
        return redirect(reverse("forecasting:deal_desk") + "?" + request.POST.urlencode())
    plan = _plan_for(form, cohort_analysis.land_trajectories(as_of=_as_of()))
    contract: Contract = form.cleaned_data["contract"]
    if not plan.estimate.count:
        messages.error(request, f"No similar accounts: nothing stored on {contract.external_id}.")
        return redirect(reverse("forecasting:deal_desk") + f"?contract={contract.external_id}")
    with transaction.atomic():
        contract = Contract.objects.select_for_update().get(pk=contract.pk)
        contract.deal_desk_estimate = plan.estimate.expected
        if form.cleaned_data["ae_estimate"] is not None:
            contract.ae_estimate = form.cleaned_data["ae_estimate"]
        contract.ramp_days = plan.ramp.days
        contract.save(update_fields=["deal_desk_estimate", "ae_estimate", "ramp_days"])
    ae = "—" if contract.ae_estimate is None else f"{contract.ae_estimate:,.0f}"
    messages.success(
        request,
        f"Stored on {contract.external_id}: deal desk estimate {plan.estimate.expected:,.0f}, "
        f"AE estimate {ae}, ramp {contract.ramp_days} days ({plan.ramp.reason}).",
    )
    return redirect(reverse("forecasting:deal_desk") + f"?contract={contract.external_id}")


class WaterfallForm(forms.Form):
    start = forms.DateField(required=False, help_text="YYYY-MM-DD; default a year before the end.")
    end = forms.DateField(required=False, help_text="YYYY-MM-DD; default the latest day with usage.")
    segment = forms.ChoiceField(choices=[("", "All segments"), *Segment.choices], required=False)
    growth = forms.DecimalField(
        label="Growth target %",
        max_digits=7,
        decimal_places=2,
        min_value=Decimal(-100),
        max_value=Decimal(1000),
        required=False,
        help_text="For the year-over-year target; default 20%.",
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start >= end:
            self.add_error("start", "The start must be before the end.")
        return data


@require_GET
def waterfall(request: HttpRequest) -> HttpResponse:
    _require_planner(request)
    form = WaterfallForm(request.GET)
    context: dict = {"form": form}
    if form.is_valid():
        data = form.cleaned_data
        end = data["end"] or _as_of()
        start = data["start"] or end - dt.timedelta(days=365)
        if start >= end:
            form.add_error("start", "The start must be before the end.")
            return render(request, "forecasting/planning_waterfall.html", context)
        segment = data["segment"] or ""
        growth_percent = DEFAULT_GROWTH_PERCENT if data["growth"] is None else data["growth"]
        rows = planning_cache.period_rows(start=start, end=end, segment=segment)
        ramps = planning_cache.segment_ramps(as_of=end, segment=segment)
        result = realization.waterfall(rows, start=start, end=end)
        labels = dict(Segment.choices)
        context.update(
            start=start,
            end=end,
            segment=segment,
            growth_percent=growth_percent,
            result=result,
            stacked=[
                (labels.get(row.segment, row.segment), row)
                for row in realization.stacked_target(
                    rows,
                    end=end,
                    ramp_days={seg: ramp.ramp_days for seg, ramp in ramps.items()},
                    growth_target=growth_percent / 100,
                )
            ],
            figure=planning_charts.waterfall_figure(result),
            segment_label=planning_charts.SEGMENT_LABELS.get(segment, segment),
        )
    return render(request, "forecasting/planning_waterfall.html", context)
