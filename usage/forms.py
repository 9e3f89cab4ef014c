from __future__ import annotations

from django import forms

from revops.access import people_in_scope
from revops.clock import check_day_in_range
from revops.models import ApiKey, Role, User
from usage.models import ImportKind


class ImportForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportKind.choices, initial=ImportKind.USAGE)
    file = forms.FileField(help_text="Comma-separated UTF-8 CSV with a header line. See the column reference.")
    complete_from = forms.DateField(
        required=False,
        label="Usage is complete from (optional)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Usage files: every billable event since this day is in this file or already stored. Contracts "
        "starting on or after it then get a known time to first billable event.",
        validators=[check_day_in_range],
    )

    def clean(self):
        data = super().clean()
        if data.get("complete_from") and data.get("kind") != ImportKind.USAGE:
            self.add_error("complete_from", "Only a usage file can declare usage complete.")
        return data


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Who or what uses it, e.g. 'billing pipeline'.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiKey.Scope.EVENTS_WRITE]
    )
    reads_as = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="Me",
        label="Reads as",
        help_text="A read key sees exactly what this person may see (default: you). Ignored for an events-only key.",
    )
    rate_limit_per_minute = forms.IntegerField(min_value=1, max_value=1_000_000, initial=600)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        people = people_in_scope(user).filter(is_active=True).order_by("name")
        if user.role != Role.ADMIN:
            people = people.exclude(role=Role.ADMIN)
        self.fields["reads_as"].queryset = people
        self.fields["reads_as"].label_from_instance = lambda person: f"{person.name} ({person.get_role_display()})"


class AlertSettingsForm(forms.ModelForm):
    """Thresholds for bands and alerts; fractions are entered as fractions (0.70 = 70%)."""

    class Meta:
        from usage.models import AlertSettings

        model = AlertSettings
        fields = [
            "expand_band",
            "escalate_band",
            "payout_floor",
            "clawback_floor",
            "run_rate_days",
            "decline_drop",
            "decline_mad_multiple",
            "decline_days",
            "decline_min_daily_revenue",
            "plateau_days",
            "plateau_tolerance",
            "no_usage_days",
            "included_warn",
            "included_critical",
            "credits_low_fraction",
        ]
        labels = {
            "expand_band": "Expand band from (burn, fraction)",
            "escalate_band": "Escalate band under (burn, fraction)",
            "payout_floor": "Payout floor (burn, fraction)",
            "clawback_floor": "Clawback floor (burn, fraction)",
            "run_rate_days": "Run-rate window (days)",
            "decline_drop": "Sudden decline: drop below expected (fraction)",
            "decline_mad_multiple": "Sudden decline: robust deviations below expected (× MAD)",
            "decline_days": "Sudden decline: declined days in a row",
            "decline_min_daily_revenue": "Sudden decline: smallest expected day ($)",
            "plateau_days": "Plateau window (days)",
            "plateau_tolerance": "Plateau tolerance (fraction)",
            "no_usage_days": "No first usage after (days)",
            "included_warn": "Included volume warning at (fraction)",
            "included_critical": "Included volume critical at (fraction)",
            "credits_low_fraction": "Credits low at (fraction of purchased)",
        }

    def clean(self):
        data = super().clean()
        for name in (
            "expand_band",
            "escalate_band",
            "payout_floor",
            "clawback_floor",
            "decline_drop",
            "plateau_tolerance",
            "included_warn",
            "included_critical",
            "credits_low_fraction",
        ):
            value = data.get(name)
            if value is not None and not (0 < value < 1 or (name.startswith("included") and value == 1)):
                self.add_error(name, "must be a fraction between 0 and 1 (0.70 = 70%)")
        escalate, expand = data.get("escalate_band"), data.get("expand_band")
        if escalate is not None and expand is not None and escalate >= expand:
            self.add_error("escalate_band", "must be below the expand band")
        warn, critical = data.get("included_warn"), data.get("included_critical")
        if warn is not None and critical is not None and warn >= critical:
            self.add_error("included_warn", "must be below the critical included-volume share")
        for name in ("run_rate_days", "plateau_days", "no_usage_days", "decline_days"):
            if data.get(name) is not None and data[name] < 1:
                self.add_error(name, "must be at least 1")
        if data.get("run_rate_days") and data["run_rate_days"] > 180:
            self.add_error("run_rate_days", "must be at most 180 days")
        if data.get("decline_days") and data["decline_days"] > 7:
            self.add_error("decline_days", "must be at most 7 (the detection window is the last 7 days)")
        return data


class UsageHistoryForm(forms.ModelForm):
    """The day usage history is complete from (admins; imports can declare it too)."""

    class Meta:
        from usage.models import UsageHistory

        model = UsageHistory
        fields = ["complete_from"]
        labels = {"complete_from": "Usage is complete from"}
        widgets = {"complete_from": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}
        help_texts = {
            "complete_from": "Every billable event since this day is stored. Leave empty to use the first stored "
            "day. Contracts starting on or after it get a known time to first billable event."
        }

    def clean_complete_from(self):
        day = self.cleaned_data["complete_from"]
        if day is not None:
            check_day_in_range(day)
        return day
