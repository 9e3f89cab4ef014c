"""Endpoint secrets at rest: Fernet with the same key as the CRM credentials (REVOPS_FIELD_KEY).

Written here rather than imported from integrations, which sits beside webhooks, not under
it; the derivation is the same, so one key (or one SECRET_KEY) protects both.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from revops.errors import ApplicationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 24


def _fernet() -> Fernet:
    key = settings.REVOPS_FIELD_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"revops-field-key:{settings.SECRET_KEY}".encode()).digest())
    return Fernet(key)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: ``whsec_`` + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ApplicationError(
            "The endpoint's signing secret cannot be read with this REVOPS_FIELD_KEY; rotate the secret."
        ) from None
