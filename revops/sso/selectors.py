"""Reads for SSO."""

from __future__ import annotations

from urllib.parse import urlparse

from revops.sso.models import IdentityProvider


def identity_provider_origins() -> list[str]:
    """The scheme://host[:port] of every active provider's sign-in URL (for the CSP's form-action)."""
    origins = set()
    for issuer, sso_url, metadata_url in IdentityProvider.objects.filter(is_active=True).values_list(
        "issuer_url", "sso_url", "metadata_url"
    ):
        for url in (issuer, sso_url, metadata_url):
            parts = urlparse(url or "")
            if (
                parts.scheme in ("http", "https")
                and parts.netloc
                and " " not in parts.netloc
                and ";" not in parts.netloc
            ):
                origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)
