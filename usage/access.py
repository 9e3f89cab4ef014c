"""Who may manage usage data (imports, quarantine, API keys)."""

from __future__ import annotations

from revops.models import Role

DATA_ROLES = frozenset({Role.FINANCE, Role.ADMIN})


def can_manage_data(user) -> bool:
    return bool(user.is_authenticated and user.role in DATA_ROLES)


def can_manage_api_keys(user) -> bool:
    return bool(user.is_authenticated and user.role == Role.ADMIN)
