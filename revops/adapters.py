from __future__ import annotations

import ipaddress
import time

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.internal.httpkit import clean_client_ip
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    """People are created by admins or imported from HR/CRM files: no self sign-up."""

    def is_open_for_signup(self, request) -> bool:
        return False

    def get_client_ip(self, request) -> str:
        """The real client: REMOTE_ADDR, unless it is one of ``TRUSTED_PROXIES``; then the
        right-most X-Forwarded-For address that is not a trusted proxy (a client can put
        anything on the left of that header, never on the right)."""
        return client_ip(request)

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        """Failed logins count per account *and* client IP: someone guessing from one
        address cannot lock the real person out from theirs (the per-IP limit in
        ``ACCOUNT_RATE_LIMITS`` still stops one address trying many accounts)."""
        return f"{super()._get_login_attempts_cache_key(request, **credentials)}:{client_ip(request)}"

    def pre_authenticate(self, request, **credentials) -> None:
        """A domain whose provider has "SSO required" has no passwords: the login form sends
        the person to their identity provider instead of checking what they typed."""
        from allauth.core.exceptions import ImmediateHttpResponse
        from django.contrib import messages
        from django.shortcuts import redirect

        from revops.sso.services import provider_requiring_sso
        from revops.sso.views import provider_login_url

        idp = provider_requiring_sso(str(credentials.get("email") or ""))
        if idp is not None:
            messages.info(request, f"Your company signs in through {idp}; continue there.")
            raise ImmediateHttpResponse(redirect(provider_login_url(idp)))
        super().pre_authenticate(request, **credentials)

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A login in the last few minutes counts when enrolling a first factor.

        Finance and admin are sent to TOTP set-up straight after logging in; asking for
        the password again there proves nothing new. Changing an existing factor still
        asks, as allauth does by default.
        """
        if app == "allauth.mfa" and _enrolling_first_factor_right_after_login():
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


def _enrolling_first_factor_right_after_login() -> bool:
    from allauth.account import app_settings
    from allauth.account.internal.flows.login import get_authentication_records
    from allauth.core import context
    from allauth.mfa.models import Authenticator

    request = context.request
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or Authenticator.objects.filter(user=user).exists():
        return False
    records = get_authentication_records(request, user)
    return bool(records) and time.time() - records[-1]["at"] < app_settings.REAUTHENTICATION_TIMEOUT


def _trusted(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.TRUSTED_PROXIES)


def client_ip(request) -> str:
    remote = clean_client_ip(request.META.get("REMOTE_ADDR", "")) or "unknown"
    if not _trusted(remote):
        return remote
    hops = [clean_client_ip(part) for part in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed(hops):
        if hop is None:
            return remote  # a malformed hop: trust nothing left of it
        if not _trusted(hop):
            return hop
    return remote
