from __future__ import annotations

from django import forms

from integrations.models import Provider, RunKind
from integrations.services import default_mapping

SECTIONS = ("account", "deal", "writeback")


class ConnectionForm(forms.Form):
    name = forms.CharField(max_length=100)
    provider = forms.ChoiceField(choices=Provider.choices)
    base_url = forms.URLField(
        max_length=300,
        assume_scheme="https",
        label="URL",
        help_text="Salesforce: your instance URL (https://acme.my.salesforce.com). HubSpot: https://api.hubapi.com.",
    )
    portal_id = forms.RegexField(
        regex=r"^\d{0,20}$",
        required=False,
        label="HubSpot portal id",
        help_text="For record links; Salesforce: leave blank.",
    )
    access_token = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.PasswordInput,
        help_text="Salesforce session / HubSpot private app token.",
    )
    refresh_token = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.PasswordInput,
        help_text="Salesforce OAuth refresh token (connected app).",
    )
    client_id = forms.CharField(max_length=300, required=False, label="OAuth client id")
    client_secret = forms.CharField(
        max_length=300, required=False, widget=forms.PasswordInput, label="OAuth client secret"
    )

    def clean(self):
        data = super().clean()
        if not (data.get("access_token") or data.get("refresh_token")):
            self.add_error("access_token", "Give an access token or a refresh token.")
        return data


def _pairs(text: str, field: str) -> dict[str, str]:
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if "=" not in line:
            raise forms.ValidationError(f"{field}, line {number}: write “CRM value = revops value”.")
        crm, ours = (part.strip() for part in line.split("=", 1))
        if not crm or not ours:
            raise forms.ValidationError(f"{field}, line {number}: both sides of “=” are needed.")
        out[crm[:200]] = ours[:40]
    return out


class MappingForm(forms.Form):
    """The mapping as flat fields (``account.segment``) plus two "value = value" lists."""

    segment_default = forms.CharField(
        max_length=20, required=False, help_text="For accounts with no segment in the CRM."
    )
    segment_values = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    team_roles = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        for section in SECTIONS:
            for key in default_mapping(provider)[section]:
                self.fields[f"{section}.{key}"] = forms.CharField(
                    max_length=80, required=(section, key) == ("account", "name"), label=f"{section}.{key}"
                )

    @staticmethod
    def initial_for(mapping: dict) -> dict:
        initial = {f"{s}.{k}": v for s in SECTIONS for k, v in (mapping.get(s) or {}).items()}
        initial["segment_default"] = mapping.get("segment_default", "")
        initial["segment_values"] = "\n".join(f"{k} = {v}" for k, v in (mapping.get("segment_values") or {}).items())
        initial["team_roles"] = "\n".join(f"{k} = {v}" for k, v in (mapping.get("team_roles") or {}).items())
        return initial

    def clean_segment_values(self):
        return _pairs(self.cleaned_data["segment_values"], "segment values")

    def clean_team_roles(self):
        return _pairs(self.cleaned_data["team_roles"], "team roles")

    def mapping(self, current: dict) -> dict:
        data = self.cleaned_data
        mapping = dict(current)
        for section in SECTIONS:
            mapping[section] = {
                key: data.get(f"{section}.{key}", "").strip() for key in default_mapping(self.provider)[section]
            }
        mapping["segment_default"] = data.get("segment_default", "").strip()
        mapping["segment_values"] = data["segment_values"]
        mapping["team_roles"] = data["team_roles"]
        return mapping


class RunForm(forms.Form):
    kind = forms.ChoiceField(choices=RunKind.choices)
    dry_run = forms.BooleanField(required=False)
    full = forms.BooleanField(required=False)
