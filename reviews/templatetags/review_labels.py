"""Labels for the review and analysis pages: stored keys and fractions as people read them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from reviews import labels

register = template.Library()


@register.filter
def points(value, places: int = 1) -> str:
    """A difference of two fractions in percentage points: 0.135 → +13.5 pts; — for nothing."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "—"
    return labels.points(number, int(places))


@register.filter
def size_points(value, places: int = 2) -> str:
    """A spread in percentage points, unsigned: a standard error of 0.0917 → 9.17 pts."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "—"
    return labels.points(number, int(places), signed=False)


@register.filter
def segment_label(value) -> str:
    """ "smb" → "SMB"; "" → "All segments"."""
    return labels.segment(str(value or ""))


@register.filter
def feature_label(value) -> str:
    """A feature as named on its meters; a slug ("batch-api") reads as words ("Batch api")."""
    return labels.feature(str(value or ""))


@register.filter
def signed_count(value) -> str:
    """+3 / −2 / 0; — for nothing."""
    if value is None or value == "":
        return "—"
    number = int(value)
    return f"+{number}" if number > 0 else f"−{-number}" if number < 0 else "0"
