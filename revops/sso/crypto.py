"""Secrets at rest (an OIDC client secret): Fernet with ``REVOPS_FIELD_KEY``, derived from
``SECRET_KEY`` when unset, as the CRM credentials are (the core may not import integrations)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from revops.errors import ApplicationError


def _fernet() -> Fernet:
    key = settings.REVOPS_FIELD_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"revops-field-key:{settings.SECRET_KEY}".encode()).digest())
    return Fernet(key)


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ApplicationError(
            "The stored client secret cannot be read with this REVOPS_FIELD_KEY; enter it again."
        ) from None
