"""Reading numbers out of query strings and forms: one rule everywhere."""

from __future__ import annotations


def whole_number(value: str | None) -> int | None:
    """A whole number written in ASCII digits, else None. ``str.isdigit`` alone lets "²" or
    "٣" through, which ``int()`` (or PostgreSQL) then refuses with a server error."""
    if value is None:
        return None
    value = str(value)
    return int(value) if value.isascii() and value.isdigit() else None
