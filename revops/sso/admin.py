"""Admins configure identity providers on the admin site (admin role only, allauth's login
with its second factor): the model's clean() validates every field before anything is saved."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from revops.sso.models import GroupMapping, IdentityProvider
from revops.sso.services import client_secret_set, scim_token_create


class IdentityProviderForm(forms.ModelForm):
    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput, help_text="OIDC client secret (stored encrypted; blank keeps it)."
    )

    class Meta:
        model = IdentityProvider
        fields = [
            "name",
            "slug",
            "kind",
            "is_active",
            "domains",
            "sso_required",
            "issuer_url",
            "client_id",
            "mfa_amr_values",
            "mfa_acr_values",
            "entity_id",
            "sso_url",
            "x509_certificate",
            "metadata_url",
            "mfa_authn_contexts",
            "email_attribute",
            "name_attribute",
            "groups_attribute",
        ]


class GroupMappingInline(admin.TabularInline):
    model = GroupMapping
    extra = 1


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin):
    form = IdentityProviderForm
    inlines = [GroupMappingInline]
    list_display = ["name", "kind", "slug", "is_active", "sso_required", "scim_token_prefix"]
    readonly_fields = ["scim_token_prefix"]
    actions = ["new_scim_token"]

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("client_secret"):
            client_secret_set(identity_provider=obj, secret=form.cleaned_data["client_secret"])
        super().save_model(request, obj, form, change)

    @admin.action(description="Issue a new SCIM token (shown once)")
    def new_scim_token(self, request, queryset):
        for idp in queryset:
            token = scim_token_create(identity_provider=idp)
            messages.warning(request, f"SCIM token for {idp} (copy it now, it is not shown again): {token}")
