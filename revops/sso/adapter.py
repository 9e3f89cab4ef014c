"""allauth's social-account adapter for company identity providers.

Providers are rows of ``IdentityProvider`` (admins configure them), turned into allauth
``SocialApp`` objects in memory, so nothing has to be kept in step with allauth's own table.
Every sign-in passes ``pre_social_login``: the email domain, the person's state and their
IdP groups decide whether they get in and with which role; allauth never signs anyone up.
"""

from __future__ import annotations

import logging

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.shortcuts import render

from revops.sso.models import IdentityProvider
from revops.sso.services import SsoRefused, mfa_satisfied, sso_user_for_login

logger = logging.getLogger(__name__)

SAML_NAME_FORMATS = {"email": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"}


def social_app(identity_provider: IdentityProvider) -> SocialApp:
    """The allauth app for one provider (unsaved: allauth reads it like a settings-configured app)."""
    from revops.sso.crypto import decrypt

    idp = identity_provider
    if idp.kind == IdentityProvider.Kind.OIDC:
        return SocialApp(
            provider="openid_connect",
            provider_id=idp.slug,
            name=idp.name,
            client_id=idp.client_id,
            secret=decrypt(idp.client_secret_encrypted),
            settings={"server_url": idp.issuer_url, "fetch_userinfo": True},
        )
    if idp.metadata_url:
        idp_settings = {"entity_id": idp.entity_id, "metadata_url": idp.metadata_url}
    else:
        idp_settings = {"entity_id": idp.entity_id, "sso_url": idp.sso_url, "x509cert": idp.x509_certificate}
    return SocialApp(
        provider="saml",
        provider_id=idp.slug,
        name=idp.name,
        client_id=idp.slug,
        settings={
            "attribute_mapping": {"email": [idp.email_attribute], "name": [idp.name_attribute]},
            "use_nameid_for_email": True,
            "idp": idp_settings,
            "advanced": {
                "strict": True,
                "want_assertion_signed": True,
                "reject_idp_initiated_sso": True,
                # The local IdPs and on-premises hosts have single-label names (localhost).
                "allow_single_label_domains": True,
            },
        },
    )


def _provider_of(sociallogin) -> IdentityProvider | None:
    return IdentityProvider.objects.filter(slug=sociallogin.account.provider, is_active=True).first()


def _claims(sociallogin) -> dict:
    """OIDC: the id_token's claims with userinfo's on top; SAML: the attributes."""
    data = sociallogin.account.extra_data or {}
    if "id_token" in data or "userinfo" in data:
        return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}
    return data


def _first(value) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def refusal(request, message: str, *, status: int = 403):
    return render(request, "revops/sso_error.html", {"message": message}, status=status)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None):
        apps = []
        for idp in IdentityProvider.objects.filter(is_active=True):
            app = social_app(idp)
            if provider and app.provider != provider and app.provider_id != provider:
                continue
            if client_id and app.client_id != client_id:
                continue
            apps.append(app)
        return apps

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return False  # pre_social_login provisions and connects; allauth never signs up

    def pre_social_login(self, request, sociallogin) -> None:
        idp = _provider_of(sociallogin)
        if idp is None:
            raise ImmediateHttpResponse(refusal(request, "This identity provider is not enabled in revops."))
        claims = _claims(sociallogin)
        email = _first(claims.get(idp.email_attribute)) or (sociallogin.user.email or "")
        name = _first(claims.get(idp.name_attribute))
        groups = _list(claims.get(idp.groups_attribute))
        try:
            user = sso_user_for_login(identity_provider=idp, email=email, name=name, groups=groups)
        except SsoRefused as refused:
            logger.info("SSO sign-in refused by %s for %s: %s", idp.slug, email, refused)
            raise ImmediateHttpResponse(refusal(request, str(refused))) from None
        saml = getattr(request, "revops_saml", {}) if idp.kind == IdentityProvider.Kind.SAML else {}
        # Read in the revops.sso.signals login hook (the session is only the person's once logged in).
        request.revops_sso_mfa = mfa_satisfied(
            identity_provider=idp,
            amr=_list(claims.get("amr")),
            acr=_first(claims.get("acr")),
            authn_contexts=saml.get("authn_contexts", []),
        )
        if sociallogin.is_existing:
            if sociallogin.user.pk != user.pk:
                raise ImmediateHttpResponse(refusal(request, "This identity is linked to another revops person."))
            return
        existing = SocialAccount.objects.filter(
            provider=sociallogin.account.provider, uid=sociallogin.account.uid
        ).first()
        if existing is not None and existing.user_id != user.pk:
            raise ImmediateHttpResponse(refusal(request, "This identity is linked to another revops person."))
        sociallogin.connect(request, user)

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None) -> None:
        reason = (extra_context or {}).get("saml_last_error_reason") or (
            str(exception.__cause__ or exception) if exception else ""
        )
        logger.info("SSO sign-in failed (%s): %s %s", getattr(provider, "id", "?"), error, reason)
        raise ImmediateHttpResponse(refusal(request, explain_failure(reason), status=400))


def explain_failure(reason: str) -> str:
    """The IdP's answer failed a check: say which, in words a person can pass on to their admin."""
    text = reason.lower()
    if "audience" in text:
        return "The identity provider's answer was meant for another application (wrong audience); ask your admin to check the revops entity ID / client ID."
    if "expired" in text or "notonorafter" in text or "signature has expired" in text:
        return "The identity provider's answer has expired; sign in again (and check the server clocks if it keeps happening)."
    if "not signed" in text or "no signature" in text or "signature" in text:
        return "The identity provider's answer was not signed (or not signed with the configured certificate), so revops refused it."
    if "replay" in text or "already used" in text:
        return "This identity provider answer was already used once; sign in again."
    return "Signing in through the identity provider failed" + (f": {reason}" if reason else ".")


class MfaAdapter(DefaultMFAAdapter):
    """The IdP's second factor counts for this sign-in: allauth does not ask for TOTP on top."""

    def is_mfa_enabled(self, user, types=None) -> bool:
        from allauth.core import context

        request = context.request
        if request is not None and getattr(request, "revops_sso_mfa", False):
            return False
        return super().is_mfa_enabled(user, types=types)
