"""Identity providers, the groups they send and what those groups mean in revops."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from revops.audit import audited
from revops.models import Role

# What an OIDC id_token's ``amr`` says when the person used a second factor (RFC 8176).
DEFAULT_MFA_AMR = ["mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "pin"]
# SAML AuthnContextClassRefs that mean more than a password (Okta, Entra ID, Google, REFEDS).
DEFAULT_MFA_AUTHN_CONTEXTS = [
    "https://refeds.org/profile/mfa",
    "http://schemas.microsoft.com/claims/multipleauthn",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
]


def _default_amr() -> list[str]:
    return list(DEFAULT_MFA_AMR)


def _default_contexts() -> list[str]:
    return list(DEFAULT_MFA_AUTHN_CONTEXTS)


@audited(exclude=["client_secret_encrypted", "scim_token_hash"])
class IdentityProvider(models.Model):
    """One company identity provider (Okta, Entra ID, Google Workspace…), configured by an admin."""

    class Kind(models.TextChoices):
        OIDC = "oidc", "OpenID Connect"
        SAML = "saml", "SAML 2.0"

    name = models.CharField(max_length=80, help_text='Shown on the login page: "Sign in with <name>".')
    slug = models.SlugField(
        max_length=40, unique=True, help_text="In the callback/ACS URLs; do not change once set up."
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    is_active = models.BooleanField(default=True)
    domains = ArrayField(
        models.CharField(max_length=253),
        help_text="Email domains this provider signs in for (comma separated); any other email is refused.",
    )
    sso_required = models.BooleanField(
        default=False, help_text="People of these domains cannot use a password: the login page sends them here."
    )
    # OpenID Connect
    issuer_url = models.URLField(
        blank=True, help_text="OIDC issuer; /.well-known/openid-configuration is read from it."
    )
    client_id = models.CharField(max_length=255, blank=True)
    client_secret_encrypted = models.TextField(blank=True)
    mfa_amr_values = ArrayField(models.CharField(max_length=40), default=_default_amr, blank=True)
    mfa_acr_values = ArrayField(
        models.CharField(max_length=255), default=list, blank=True, help_text="acr values that mean a second factor."
    )
    # SAML
    entity_id = models.CharField(max_length=255, blank=True, help_text="The IdP's entity ID (issuer).")
    sso_url = models.URLField(blank=True, help_text="The IdP's SSO URL (HTTP-Redirect binding).")
    x509_certificate = models.TextField(blank=True, help_text="The IdP's signing certificate (PEM).")
    metadata_url = models.URLField(blank=True, help_text="Instead of the three fields above: the IdP's metadata URL.")
    mfa_authn_contexts = ArrayField(models.CharField(max_length=255), default=_default_contexts, blank=True)
    # Attribute mapping (claim names for OIDC, attribute names for SAML)
    email_attribute = models.CharField(max_length=255, default="email")
    name_attribute = models.CharField(max_length=255, default="name")
    groups_attribute = models.CharField(max_length=255, default="groups")
    # SCIM: a bearer token per provider; only its SHA-256 is kept.
    scim_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    scim_token_prefix = models.CharField(max_length=12, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.domains = sorted({d.strip().lower().lstrip("@") for d in self.domains or [] if d.strip()})
        errors: dict[str, str] = {}
        if not self.domains:
            errors["domains"] = "Give at least one email domain, e.g. example.com."
        for domain in self.domains:
            if "." not in domain or "/" in domain or "@" in domain:
                errors["domains"] = f"{domain!r} is not an email domain (example.com)."
        if self.kind == self.Kind.OIDC:
            for field in ("issuer_url", "client_id"):
                if not getattr(self, field):
                    errors[field] = "Needed for an OpenID Connect provider."
        elif self.kind == self.Kind.SAML and not self.metadata_url:
            for field in ("entity_id", "sso_url", "x509_certificate"):
                if not getattr(self, field):
                    errors[field] = "Needed for a SAML provider unless a metadata URL is given."
            if self.x509_certificate and "BEGIN CERTIFICATE" not in self.x509_certificate:
                errors["x509_certificate"] = "Paste the PEM certificate (-----BEGIN CERTIFICATE----- …)."
        clash = IdentityProvider.objects.exclude(pk=self.pk).filter(domains__overlap=self.domains, is_active=True)
        if self.is_active and clash.exists():
            errors["domains"] = (
                f"{', '.join(self.domains)} already belongs to {clash.first()}; a domain has one provider."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def allauth_provider(self) -> str:
        return "openid_connect" if self.kind == self.Kind.OIDC else "saml"


class GroupMapping(models.Model):
    """What an IdP group gives: a role, a team, or both. The only way roles arrive by SSO/SCIM."""

    identity_provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="group_mappings")
    group = models.CharField(max_length=255, help_text="The group's name exactly as the IdP sends it.")
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    team = models.ForeignKey("revops.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["group"]
        constraints = [models.UniqueConstraint(fields=["identity_provider", "group"], name="sso_groupmapping_unique")]

    def __str__(self) -> str:
        return self.group

    def clean(self) -> None:
        if not self.role and not self.team_id:
            raise ValidationError("A mapping gives a role, a team or both.")


class ScimUser(models.Model):
    """A person as one provider's SCIM client knows them (its externalId and userName)."""

    identity_provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="scim_users")
    user = models.ForeignKey("revops.User", on_delete=models.CASCADE, related_name="scim_identities")
    external_id = models.CharField(max_length=255, blank=True)
    user_name = models.CharField(max_length=255)
    # The emails as the provider sent them ({value, primary}); the person's login is the primary one.
    emails = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["identity_provider", "user"], name="sso_scimuser_unique")]

    def __str__(self) -> str:
        return self.user_name


class ScimGroup(models.Model):
    """A group pushed by a provider's SCIM client, with its members (mapped through GroupMapping)."""

    identity_provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="scim_groups")
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField("revops.User", blank=True, related_name="scim_groups")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["identity_provider", "display_name"], name="sso_scimgroup_unique")
        ]

    def __str__(self) -> str:
        return self.display_name
