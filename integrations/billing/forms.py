"""The Stripe pages' forms: what is typed, checked field by field before any service runs."""

from __future__ import annotations

from django import forms

from integrations.models import UsageMode


def parse_meter_map(text: str) -> dict[str, str]:
    """``mtr_… = revops_meter`` (or ``price_… = …``), one a line."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if "=" not in line:
            raise forms.ValidationError(f"line {number}: write “Stripe meter or price id = revops meter key”.")
        stripe_key, meter = (part.strip() for part in line.split("=", 1))
        if not stripe_key or not meter:
            raise forms.ValidationError(f"line {number}: both sides of “=” are needed.")
        if stripe_key in out:
            raise forms.ValidationError(f"line {number}: {stripe_key[:80]} is mapped twice.")
        out[stripe_key[:100]] = meter[:64]
    return out


class StripeConnectionForm(forms.Form):
    name = forms.CharField(max_length=100)
    secret_key = forms.CharField(
        max_length=300,
        widget=forms.PasswordInput,
        help_text="A restricted key with read access to customers, invoices and invoice payments, credit notes, refunds, charges and billing meters.",
    )
    webhook_secret = forms.CharField(
        max_length=300,
        required=False,
        widget=forms.PasswordInput,
        label="Webhook signing secret",
        help_text="whsec_…, from the webhook endpoint you add in Stripe (its URL is on the connection's page).",
    )
    api_base = forms.URLField(
        max_length=300,
        required=False,
        assume_scheme="https",
        label="API base URL",
        help_text="Blank: Stripe's (https://api.stripe.com). A local test server's URL otherwise.",
    )
    metadata_key = forms.CharField(
        max_length=40, initial="revops_account", help_text="The customer metadata key that holds the revops account id."
    )
    match_email_domain = forms.BooleanField(
        required=False, initial=True, label="Else match by the email's domain (the domain table)"
    )
    usage_mode = forms.ChoiceField(choices=UsageMode.choices, initial=UsageMode.METER_SUMMARIES)
    meter_map = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Meters",
        help_text="One a line: Stripe meter id (or price id for invoice lines) = revops meter key.",
    )
    usage_start = forms.DateField(
        required=False, help_text="The first day of usage to import (YYYY-MM-DD); blank: 30 days ago."
    )

    def clean_meter_map(self) -> dict[str, str]:
        return parse_meter_map(self.cleaned_data.get("meter_map") or "")


class DomainForm(forms.Form):
    domain = forms.CharField(max_length=253, help_text="e.g. acme.com")
    account = forms.CharField(max_length=100, label="Account id", help_text="The revops account's id (external id).")


class SyncForm(forms.Form):
    full = forms.BooleanField(required=False)
