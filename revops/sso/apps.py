from __future__ import annotations

from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "revops.sso"
    label = "sso"
    verbose_name = "Single sign-on and SCIM"

    def ready(self) -> None:
        from revops.sso import signals  # noqa: F401  (records the IdP's second factor at login)
