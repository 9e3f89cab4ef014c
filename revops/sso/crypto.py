"""An OIDC client secret at rest (revops.crypto: Fernet with ``REVOPS_FIELD_KEY``)."""

from __future__ import annotations

from revops.crypto import decrypt_text
from revops.crypto import encrypt_text as encrypt

__all__ = ["decrypt", "encrypt"]


def decrypt(token: str) -> str:
    return decrypt_text(
        token, unreadable="The stored client secret cannot be read with this REVOPS_FIELD_KEY; enter it again."
    )
