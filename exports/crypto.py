"""Target credentials at rest: Fernet with ``REVOPS_FIELD_KEY`` (as integrations.crypto does;
exports may not import integrations, and the key and derivation must stay the same)."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from revops.errors import ApplicationError


def _fernet() -> Fernet:
    key = settings.REVOPS_FIELD_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"revops-field-key:{settings.SECRET_KEY}".encode()).digest())
    return Fernet(key)


def encrypt_json(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ApplicationError(
            "The stored credentials cannot be read with this REVOPS_FIELD_KEY; enter them again."
        ) from None
