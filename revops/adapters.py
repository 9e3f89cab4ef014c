from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """People are created by admins or imported from HR/CRM files: no self sign-up."""

    def is_open_for_signup(self, request) -> bool:
        return False
