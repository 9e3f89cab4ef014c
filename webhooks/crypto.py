"""Endpoint signing secrets: made in the Standard Webhooks format, kept encrypted
(revops.crypto: Fernet with ``REVOPS_FIELD_KEY``)."""

from __future__ import annotations

import base64
import secrets

from revops.crypto import decrypt_text
from revops.crypto import encrypt_text as encrypt

__all__ = ["decrypt", "encrypt", "new_secret"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 24


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: ``whsec_`` + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def decrypt(token: str) -> str:
    return decrypt_text(
        token, unreadable="The endpoint's signing secret cannot be read with this REVOPS_FIELD_KEY; rotate the secret."
    )
