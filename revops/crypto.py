"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with one key for the whole product.

``REVOPS_FIELD_KEY`` is a urlsafe-base64 Fernet key (``Fernet.generate_key()``). When it is
unset, a key is derived from ``SECRET_KEY`` so ``make run`` and the tests work out of the
box; production should set its own key, so rotating ``SECRET_KEY`` does not lock the stored
secrets away. CRM and warehouse credentials, Stripe keys, export-target keys, webhook
signing secrets and OIDC client secrets all go through here; each caller says, in
``unreadable``, what a person should do when a stored value cannot be read with the key.
"""

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


def encrypt_text(value: str) -> str:
    """The ciphertext of ``value`` ("" for "")."""
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt_text(token: str, *, unreadable: str) -> str:
    """The text ``token`` encrypts ("" for ""); ApplicationError(``unreadable``) when this key cannot read it."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ApplicationError(unreadable) from None


def encrypt_json(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str, *, unreadable: str) -> dict:
    """The dict ``token`` encrypts ({} for ""); ApplicationError(``unreadable``) when this key cannot read it."""
    if not token:
        return {}
    return json.loads(decrypt_text(token, unreadable=unreadable))
