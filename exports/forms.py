from __future__ import annotations

import datetime as dt

from django import forms

from exports.models import Format, Schedule
from exports.selectors import TABLE_CHOICES


class TargetForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        max_length=500,
        label="URL",
        help_text="file:///absolute/folder, or s3://bucket/prefix?endpoint=https://host:9000&amp;region=us-east-1 "
        "(endpoint only for an S3-compatible server other than AWS).",
        widget=forms.TextInput(attrs={"type": "url", "spellcheck": "false"}),
    )
    formats = forms.MultipleChoiceField(choices=Format.choices, widget=forms.CheckboxSelectMultiple)
    tables = forms.MultipleChoiceField(choices=TABLE_CHOICES, widget=forms.CheckboxSelectMultiple)
    schedule = forms.ChoiceField(choices=Schedule.choices)
    access_key_id = forms.CharField(max_length=200, required=False, label="S3 access key id")
    secret_access_key = forms.CharField(
        max_length=200,
        required=False,
        widget=forms.PasswordInput,
        label="S3 secret access key",
        help_text="Encrypted at rest. When editing, leave blank to keep the stored one.",
    )

    def credentials(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("access_key_id", "secret_access_key") if self.cleaned_data.get(k)}


class RunForm(forms.Form):
    first_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    last_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    tables = forms.MultipleChoiceField(choices=TABLE_CHOICES, widget=forms.CheckboxSelectMultiple)

    def clean(self):
        data = super().clean()
        first, last = data.get("first_day"), data.get("last_day")
        today = dt.datetime.now(dt.UTC).date()
        if last and last > today:
            self.add_error("last_day", f"The last day cannot be after today ({today}, UTC).")
        if first and last and first > last:
            self.add_error("first_day", "The first day must not be after the last day.")
        return data
