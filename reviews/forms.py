from __future__ import annotations

import re

from django import forms

from accounts.models import Account
from reviews import labels, services, snapshot
from reviews.models import ActionStatus, Review
from revops.models import User
from usage.models import Meter, ProductRelease

MONTH = re.compile(r"\d{4}-\d{2}")


class OpenReviewForm(forms.Form):
    month = forms.CharField(max_length=7, help_text="YYYY-MM", widget=forms.TextInput(attrs={"type": "month"}))

    def clean_month(self):
        import datetime as dt

        value = self.cleaned_data["month"].strip()
        try:
            if not MONTH.fullmatch(value):
                raise ValueError
            return dt.date(int(value[:4]), int(value[5:]), 1)
        except ValueError:
            raise forms.ValidationError(f"Give the month as YYYY-MM, not {value[:20]!r}.") from None


class _ActivityChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        notes = (obj.notes[:90] + "…") if len(obj.notes) > 90 else obj.notes
        return f"{obj.occurred_on} · {obj.account.name} · {obj.get_kind_display()} by {obj.person.name}: {notes}"


class PatternForm(forms.Form):
    title = forms.CharField(max_length=200)
    detail = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), help_text="What customers said and what it means."
    )
    activities = _ActivityChoice(
        queryset=None,
        widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="Logged conversations behind the pattern (the month and the two weeks after). Their accounts are cited too.",
    )
    extra_accounts = forms.CharField(
        required=False, label="Other accounts", help_text="More accounts to cite, by external id, comma-separated."
    )

    def __init__(self, *args, review: Review, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["activities"].queryset = services.month_activities(review).order_by("-occurred_on", "account__name")

    def clean_extra_accounts(self) -> list[Account]:
        ids = [v.strip() for v in self.cleaned_data["extra_accounts"].split(",") if v.strip()]
        found = {a.external_id: a for a in Account.objects.filter(external_id__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise forms.ValidationError(f"No account with external id {', '.join(missing)}.")
        return list(found.values())


class DecisionForm(forms.Form):
    title = forms.CharField(max_length=200)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), help_text="The decision and the usage data behind it."
    )
    meters = forms.ModelMultipleChoiceField(
        queryset=Meter.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )
    features = forms.MultipleChoiceField(choices=(), required=False, widget=forms.CheckboxSelectMultiple)
    releases = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)
    window_days = forms.IntegerField(
        min_value=7,
        max_value=90,
        initial=28,
        label="Attribution window (days)",
        help_text="Days before and after each release compared.",
    )

    def __init__(self, *args, review: Review, **kwargs):
        super().__init__(*args, **kwargs)
        features = Meter.objects.exclude(feature="").order_by("feature").values_list("feature", flat=True).distinct()
        self.fields["features"].choices = [(f, labels.feature(f)) for f in features]
        self.fields["releases"].queryset = ProductRelease.objects.filter(
            released_on__lte=snapshot.month_end(review.month)
        ).order_by("-released_on")

    def clean(self):
        data = super().clean()
        if not (data.get("meters") or data.get("features") or data.get("releases")):
            raise forms.ValidationError(
                "Choose the usage data behind the decision: at least one meter, feature or release."
            )
        return data


class ActionForm(forms.Form):
    title = forms.CharField(max_length=300, label="Action")
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("name"))
    due_on = forms.DateField(
        label="Due", widget=forms.DateInput(attrs={"placeholder": "YYYY-MM-DD", "size": 11}), help_text="YYYY-MM-DD"
    )


class ActionStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ActionStatus.choices)
    note = forms.CharField(max_length=300, required=False)


class FinalizeForm(forms.Form):
    summary = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: the leaders' summary for distribution.",
    )
