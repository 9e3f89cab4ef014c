"""Forms on the account page. They check shape; the services check the business rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.utils import timezone

from accounts.models import AccountPlan, ActivityKind
from accounts.services import MAX_DAYS_AHEAD

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ActivityForm(forms.Form):
    occurred_on = forms.DateField(
        label="Date",
        widget=DATE_WIDGET,
        error_messages={
            "required": "Enter the date of the conversation.",
            "invalid": "Enter a valid date (YYYY-MM-DD).",
        },
    )
    kind = forms.ChoiceField(
        choices=ActivityKind.choices,
        initial=ActivityKind.CALL,
        error_messages={
            "required": "Choose what kind of conversation it was.",
            "invalid_choice": "Unknown activity kind “%(value)s”.",
        },
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=10_000)
    tags = forms.CharField(
        required=False, max_length=500, help_text="Comma-separated, e.g. pricing, new-workload", label="Tags"
    )

    def __init__(self, *args, today: dt.date | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.today = today or timezone.localdate()
        if not self.is_bound:
            self.initial.setdefault("occurred_on", self.today)

    def clean_occurred_on(self) -> dt.date:
        value = self.cleaned_data["occurred_on"]
        if value > self.today + dt.timedelta(days=MAX_DAYS_AHEAD):
            raise forms.ValidationError("The date cannot be more than 1 day in the future.")
        return value

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class AccountPlanForm(forms.ModelForm):
    # The model keeps a fraction (0.25); people think in percent (25).
    growth_target_pct = forms.DecimalField(
        label="Growth target (%)",
        required=False,
        max_digits=7,
        decimal_places=2,
        help_text="Target growth of the usage baseline over the plan period.",
    )

    class Meta:
        model = AccountPlan
        fields = [
            "usage_baseline",
            "expansion_opportunities",
            "value_realization",
            "stakeholders",
            "risks",
            "next_review_on",
        ]
        labels = {"usage_baseline": "Usage baseline ($ annualized)"}
        widgets = {
            "expansion_opportunities": forms.Textarea(attrs={"rows": 3}),
            "value_realization": forms.Textarea(attrs={"rows": 3}),
            "stakeholders": forms.Textarea(attrs={"rows": 3}),
            "risks": forms.Textarea(attrs={"rows": 3}),
            "next_review_on": DATE_WIDGET,
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.growth_target is not None and not self.is_bound:
            self.initial["growth_target_pct"] = (self.instance.growth_target * 100).normalize()
        # Reorder so the target sits beside the baseline.
        order = [
            "usage_baseline",
            "growth_target_pct",
            *[n for n in self.fields if n not in ("usage_baseline", "growth_target_pct")],
        ]
        self.order_fields(order)

    @property
    def growth_target(self) -> Decimal | None:
        pct = self.cleaned_data.get("growth_target_pct")
        return None if pct is None else pct / 100
