"""Human labels for stored keys and ratios (the pages' and the stored evidence's wording)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import Segment

SLUG = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


def segment(value: str) -> str:
    if not value:
        return "All segments"
    return Segment(value).label if value in Segment.values else value


ACRONYMS = frozenset({"api", "sdk", "sso", "gpu", "cpu", "llm", "etl", "sql", "ai", "gb", "tb", "ga"})


def feature(value: str) -> str:
    """Features are free text on meters ("Vector search"), but releases also name feature
    flags ("hybrid-search", "batch-api"): a lower-case slug is shown as words, "Batch API"."""
    if not SLUG.fullmatch(value):
        return value
    words = re.split(r"[-_]", value)
    shown = [w.upper() if w in ACRONYMS else w for w in words]
    if shown[0] == words[0]:
        shown[0] = shown[0].capitalize()
    return " ".join(shown)


def points(value: Decimal, places: int = 1, *, signed: bool = True) -> str:
    """A difference of fractions in percentage points: 0.135 → "+13.5 pts" (a size, such
    as a standard error, unsigned: "13.5 pts")."""
    shown = (value * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = ("+" if shown > 0 else "−" if shown < 0 else "") if signed else ""
    return f"{sign}{abs(shown)} pts"


def month_coverage(month: dt.date, through: dt.date) -> tuple[int, int]:
    """(days of ``month`` up to ``through``, days in the month): (1, 31) on the 1st of May."""
    days = calendar.monthrange(month.year, month.month)[1]
    if through < month:
        return 0, days
    return min(days, (through - month).days + 1), days


def partial_label(month: dt.date, through: dt.date | None) -> str:
    """ "partial: 1 of 31 days" for a month the data do not reach the end of, else ""."""
    if through is None:
        return ""
    covered, days = month_coverage(month, through)
    return f"partial: {covered} of {days} days" if covered < days else ""
