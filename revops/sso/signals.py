"""At each login, note in the session whether the IdP vouched for a second factor.

The flag is written only once the person is logged in (a flag left in an anonymous session
must never carry over to a password login), and a password login clears it.
"""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.dispatch import receiver

SESSION_KEY = "revops_sso_mfa"


@receiver(user_logged_in)
def remember_idp_second_factor(sender, request, user, **kwargs) -> None:
    if kwargs.get("sociallogin") is not None and getattr(request, "revops_sso_mfa", False):
        request.session[SESSION_KEY] = True
    else:
        request.session.pop(SESSION_KEY, None)
