"""Connector credentials at rest (revops.crypto: Fernet with ``REVOPS_FIELD_KEY``)."""

from __future__ import annotations

from revops import crypto
from revops.crypto import encrypt_json

__all__ = ["decrypt_json", "encrypt_json"]


def decrypt_json(token: str) -> dict:
    return crypto.decrypt_json(
        token, unreadable="The stored credentials cannot be read with this REVOPS_FIELD_KEY; connect again."
    )
