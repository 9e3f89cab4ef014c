"""Writes for SSO and SCIM: who may sign in, with which role, and ending a person's access."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from revops.errors import ApplicationError
from revops.models import ApiKey, Role, Team, User
from revops.sso.models import GroupMapping, IdentityProvider

SCIM_TOKEN_PREFIX = "scim_"  # noqa: S105  (a prefix to recognise tokens, not a secret)
# When groups give several roles, the one with the most reach wins (and is documented so).
ROLE_PRECEDENCE = [Role.ADMIN, Role.FINANCE, Role.LEADER, Role.PRODUCT, Role.CSM, Role.AE]

NO_GROUP_MESSAGE = "Your identity provider gave no group that revops maps to a role; ask your admin."


class SsoRefused(ApplicationError):
    """A sign-in or provisioning the rules refuse; the message is shown to the person as is."""


@dataclass(frozen=True)
class Grant:
    role: str
    team: Team | None


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower() if "@" in email else ""


def grant_for_groups(*, identity_provider: IdentityProvider, groups: Iterable[str]) -> Grant:
    """The role and team the provider's groups give; refused when no group gives a role."""
    names = {g.strip() for g in groups if g and g.strip()}
    mappings = list(
        GroupMapping.objects.filter(identity_provider=identity_provider, group__in=names).select_related("team")
    )
    roles = {m.role for m in mappings if m.role}
    if not roles:
        raise SsoRefused(NO_GROUP_MESSAGE)
    role = next(r for r in ROLE_PRECEDENCE if r in roles)
    teams = sorted((m for m in mappings if m.team_id), key=lambda m: m.group)
    return Grant(role=role, team=teams[0].team if teams else None)


def _apply_grant(user: User, grant: Grant) -> None:
    fields = []
    if user.role != grant.role:
        user.role = grant.role
        fields.append("role")
    if grant.team is not None and user.team_id != grant.team.pk:
        user.team = grant.team
        fields.append("team")
    if fields:
        user.save(update_fields=fields)


@transaction.atomic
def sso_user_for_login(*, identity_provider: IdentityProvider, email: str, name: str, groups: Iterable[str]) -> User:
    """The person an IdP assertion signs in: checked, created on first sign-in, role and team
    set from their groups every time (never from anything the person chooses)."""
    email = (email or "").strip().lower()
    if not email:
        raise SsoRefused(f"{identity_provider} sent no email address; ask your admin to map the email attribute.")
    domain = email_domain(email)
    if domain not in identity_provider.domains:
        raise SsoRefused(
            f"{email} is not in a domain {identity_provider} signs in for ({', '.join(identity_provider.domains)})."
        )
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and not user.is_active:
        raise SsoRefused(f"The revops account for {email} is deactivated; ask your admin.")
    grant = grant_for_groups(identity_provider=identity_provider, groups=groups)
    if user is None:
        user = User.objects.create_user(email, None, name=name or email.split("@")[0], role=grant.role, team=grant.team)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    else:
        _apply_grant(user, grant)
    return user


def provider_requiring_sso(email: str) -> IdentityProvider | None:
    """The active provider that must be used for this email, if its domain has "SSO required"."""
    domain = email_domain(email or "")
    if not domain:
        return None
    return IdentityProvider.objects.filter(is_active=True, sso_required=True, domains__contains=[domain]).first()


def provider_for_email(email: str) -> IdentityProvider | None:
    domain = email_domain(email or "")
    if not domain:
        return None
    return IdentityProvider.objects.filter(is_active=True, domains__contains=[domain]).first()


def mfa_satisfied(
    *, identity_provider: IdentityProvider, amr: Iterable[str] = (), acr: str = "", authn_contexts: Iterable[str] = ()
) -> bool:
    """Whether what the IdP asserts about how the person authenticated is a second factor."""
    if identity_provider.kind == IdentityProvider.Kind.OIDC:
        if set(amr) & set(identity_provider.mfa_amr_values):
            return True
        return bool(acr) and acr in identity_provider.mfa_acr_values
    return bool(set(authn_contexts) & set(identity_provider.mfa_authn_contexts))


@transaction.atomic
def user_deactivate(*, user: User) -> tuple[int, int]:
    """Lock the person out now: inactive, every session of theirs deleted, their API keys revoked.

    Returns (sessions deleted, keys revoked). Sessions are database rows keyed by a random id,
    so the person's are found by decoding the unexpired ones (one pass; the table holds only
    live sessions once ``clearsessions`` runs).
    """
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    mine = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            mine.append(session.session_key)
    deleted, _ = Session.objects.filter(session_key__in=mine).delete()
    revoked = ApiKey.objects.filter(acts_as=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return deleted, revoked


def scim_token_create(*, identity_provider: IdentityProvider) -> str:
    """A new SCIM bearer token for the provider (shown once; replaces the previous one)."""
    raw = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    identity_provider.scim_token_hash = hashlib.sha256(raw.encode()).hexdigest()
    identity_provider.scim_token_prefix = raw[:12]
    identity_provider.save(update_fields=["scim_token_hash", "scim_token_prefix"])
    return raw


def provider_for_scim_token(raw: str) -> IdentityProvider | None:
    if not raw.startswith(SCIM_TOKEN_PREFIX):
        return None
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return IdentityProvider.objects.filter(scim_token_hash=digest, is_active=True).first()


def client_secret_set(*, identity_provider: IdentityProvider, secret: str) -> None:
    from revops.sso.crypto import encrypt

    identity_provider.client_secret_encrypted = encrypt(secret)
