from __future__ import annotations

import time

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """People are created by admins or imported from HR/CRM files: no self sign-up."""

    def is_open_for_signup(self, request) -> bool:
        return False

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
