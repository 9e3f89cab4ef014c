from __future__ import annotations

from django import forms

from revops.events import EVENT_TYPES
from revops.models import Team

COMPANY = "company"


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        label="URL",
        help_text="Where revops POSTs the events (https recommended; http is accepted). Credentials in the URL are refused.",
    )
    scope = forms.ChoiceField(
        label="Events about",
        help_text="The company: every event subscribed. A team: events about its accounts and people.",
    )
    event_types = forms.MultipleChoiceField(
        choices=[(t, f"{t}: {meaning}") for t, meaning in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
        label="Event types",
    )
    enabled = forms.BooleanField(required=False, initial=True, help_text="Disabled: nothing is queued or sent.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teams = {str(t.pk): t for t in Team.objects.order_by("name")}
        self.fields["scope"].choices = [(COMPANY, "The company")] + [
            (pk, f"Team {t.name}") for pk, t in self.teams.items()
        ]

    def team(self) -> Team | None:
        return self.teams.get(self.cleaned_data["scope"])

    @classmethod
    def initial_for(cls, endpoint) -> dict:
        return {
            "name": endpoint.name,
            "url": endpoint.url,
            "scope": str(endpoint.team_id) if endpoint.team_id else COMPANY,
            "event_types": endpoint.event_types,
            "enabled": endpoint.enabled,
        }


class RotateForm(forms.Form):
    grace_hours = forms.IntegerField(
        min_value=0,
        max_value=168,
        initial=24,
        label="Old secret keeps signing for (hours)",
        help_text="0 to 168. Both signatures are sent meanwhile, so receivers can switch over.",
    )
