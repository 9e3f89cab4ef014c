from __future__ import annotations

from django import forms

from usage.models import ApiKey, ImportKind


class ImportForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportKind.choices, initial=ImportKind.USAGE)
    file = forms.FileField(help_text="Comma-separated UTF-8 CSV with a header line. See the column reference.")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Who or what uses it, e.g. 'billing pipeline'.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiKey.Scope.EVENTS_WRITE]
    )
    rate_limit_per_minute = forms.IntegerField(min_value=1, max_value=1_000_000, initial=600)
