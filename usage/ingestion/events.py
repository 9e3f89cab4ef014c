"""Parsing and validation of usage events, shared by the HTTP API and the CSV import.

A parser turns one JSON object (or CSV row) into an ``EventIn`` or raises
``EventError`` with a reason a client can act on. Nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DEFAULT_SOURCE = "default"
MAX_ID_LENGTH = 200
# usage_event.quantity is numeric(28, 6): exact, so more decimals are refused, never rounded.
QUANTITY_MAX_DECIMALS = 6
QUANTITY_MAX_INTEGER_DIGITS = 22

# --- The one rule set for times and quantities -------------------------------------------
# The API (Python, below) and the CSV import (SQL, usage.ingestion.csv_import) both apply these exact
# patterns and checks in this order, with the same messages; tests/usage/test_parity.py feeds
# the same edge cases to both. The patterns are written in the common subset of Python's
# ``re`` and PostgreSQL's regular expressions (ASCII digits only; Python matches them whole).
# Both strip the same whitespace (WHITESPACE) around a time or a quantity first.
#
# A time is RFC 3339 with a zone: years 1900-2999, seconds 00-59 (no leap second: neither
# Python nor PostgreSQL can store one), up to 9 fractional digits (truncated to microseconds,
# never rounded), "T", "t" or a space between date and time, and "Z", "z" or an offset of at
# most ±15:59 (PostgreSQL's limit; real zones span -12:00 to +14:00).
TIME_PATTERN = (
    r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"
)
# A time that would be valid with a zone: refused with a hint to add one.
TIME_NAIVE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$"
# A quantity is a plain decimal: optional sign, digits with an optional point (".5" and "5."
# too), an optional exponent of at most 4 digits ("1e3"). Then, by value: not negative
# ("-0" is zero), below 10^22, and no non-zero digit after the 6th decimal place
# ("1.1234560" is fine, "1.5e-7" is not).
QUANTITY_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$"
QUANTITY_NOT_FINITE_PATTERN = r"^[+-]?([sS]?[nN][aA][nN]|[iI][nN][fF]([iI][nN][iI][tT][yY])?)$"

WHITESPACE = " \t\n\r\f\v"

_TIME = re.compile(TIME_PATTERN)
_TIME_NAIVE = re.compile(TIME_NAIVE_PATTERN)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_QUANTITY_NOT_FINITE = re.compile(QUANTITY_NOT_FINITE_PATTERN)
_QUANTITY_LIMIT = Decimal(10) ** QUANTITY_MAX_INTEGER_DIGITS


def time_naive_reason(text: str) -> str:
    return f"'{text}' has no time zone; add Z or an offset"


def time_format_reason(text: str) -> str:
    return f"'{text[:60]}' is not an RFC 3339 timestamp"


def time_date_reason(text: str) -> str:
    return f"'{text}' is not a date that exists"


def quantity_not_number_reason(text: str) -> str:
    return f"'{text[:40]}' is not a number"


def quantity_not_finite_reason(text: str) -> str:
    return f"'{text}' is not a finite number"


def quantity_negative_reason(text: str) -> str:
    return f"{text} is negative; usage quantities must be zero or more"


def quantity_too_large_reason(text: str) -> str:
    return f"{text} is too large"


def quantity_decimals_reason(text: str) -> str:
    return f"{text} has more than {QUANTITY_MAX_DECIMALS} decimal places"


class EventError(ValueError):
    """One event is invalid; ``field`` names the part at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EventIn:
    source: str
    event_id: str
    account_ref: str
    meter_ref: str
    occurred_at: dt.datetime
    quantity: Decimal
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> uuid.UUID:
        return event_key(self.source, self.event_id)


def event_key(source: str, event_id: str) -> uuid.UUID:
    """The deduplication key: 128 bits of md5 over (source, id).

    Deterministic from the identity alone (never the timestamp), so a retry that carries
    the same id with another time is still a duplicate. 128 bits make an accidental
    collision (which would drop an event) vanishingly unlikely at any realistic volume.
    """
    return uuid.UUID(bytes=hashlib.md5(f"{source}\x1f{event_id}".encode(), usedforsecurity=False).digest())


def parse_identifier(value: Any, name: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise EventError(name, "is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EventError(name, f"must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise EventError(name, "must not be blank")
    if "\x00" in text:
        raise EventError(name, "contains a NUL character")
    if len(text) > MAX_ID_LENGTH:
        raise EventError(name, f"is longer than {MAX_ID_LENGTH} characters")
    return text


def parse_time(value: Any, name: str = "time") -> dt.datetime:
    if not isinstance(value, str):
        raise EventError(name, "must be an RFC 3339 timestamp string with a time zone, e.g. 2026-05-01T12:00:00Z")
    text = value.strip(WHITESPACE)
    if not text:
        raise EventError(name, "is required")
    if not _TIME.fullmatch(text):
        if _TIME_NAIVE.fullmatch(text):
            raise EventError(name, time_naive_reason(text))
        raise EventError(name, time_format_reason(text))
    try:
        # fromisoformat truncates a fraction beyond microseconds, as the CSV import does.
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise EventError(name, time_date_reason(text)) from None
    return parsed.astimezone(dt.UTC)


def parse_quantity(value: Any, name: str = "quantity") -> Decimal:
    if isinstance(value, bool) or value is None:
        raise EventError(name, "is required and must be a number or a decimal string")
    if isinstance(value, Decimal):
        value = str(value)
    if isinstance(value, float):
        # JSON numbers arrive as float; repr gives the shortest exact decimal text.
        value = repr(value)
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise EventError(name, f"must be a number or a decimal string, not {type(value).__name__}")
    text = value.strip(WHITESPACE)
    if not text:
        raise EventError(name, "is required")
    if not _QUANTITY.fullmatch(text):
        if _QUANTITY_NOT_FINITE.fullmatch(text):
            raise EventError(name, quantity_not_finite_reason(text))
        raise EventError(name, quantity_not_number_reason(text))
    quantity = Decimal(text)  # exact: a Decimal keeps every digit it is given
    if quantity.is_zero():
        return Decimal(0)
    if quantity < 0:
        raise EventError(name, quantity_negative_reason(text))
    if quantity >= _QUANTITY_LIMIT:
        raise EventError(name, quantity_too_large_reason(text))
    _, digits, exponent = quantity.as_tuple()
    assert isinstance(exponent, int)
    # Trailing zeros are not decimal places: 1.1234560 has six.
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
    exponent += len(digits) - significant
    if exponent < -QUANTITY_MAX_DECIMALS:
        raise EventError(name, quantity_decimals_reason(text))
    exact = Decimal((0, digits[:significant], exponent))
    return exact.quantize(Decimal(1)) if exponent > 0 else exact


def parse_properties(value: Any, name: str = "properties", *, may_hold_nul: bool = True) -> dict[str, Any]:
    """``may_hold_nul=False`` skips the NUL search when the caller knows there is none (the API
    looks for an escaped NUL in the raw body once)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise EventError(name, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise EventError(name, "must be a JSON object")
    if may_hold_nul and _has_nul(value):
        raise EventError(name, "contains a NUL character (PostgreSQL cannot store it)")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def parse_native(obj: Any, *, may_hold_nul: bool = True) -> EventIn:
    """``{"id", "account", "meter", "time", "quantity", "properties"?, "source"?}``."""
    if not isinstance(obj, dict):
        raise EventError("event", f"must be a JSON object, not {type(obj).__name__}")
    return EventIn(
        source=parse_identifier(obj.get("source"), "source", required=False) or DEFAULT_SOURCE,
        event_id=parse_identifier(obj.get("id"), "id"),
        account_ref=parse_identifier(obj.get("account"), "account"),
        meter_ref=parse_identifier(obj.get("meter"), "meter"),
        occurred_at=parse_time(obj.get("time")),
        quantity=parse_quantity(obj.get("quantity")),
        properties=parse_properties(obj.get("properties"), may_hold_nul=may_hold_nul),
    )


def check_time_window(event: EventIn, *, now: dt.datetime, retention_days: int) -> None:
    """The API takes events from the retention window up to 24 h ahead; backfills use import."""
    if event.occurred_at > now + dt.timedelta(hours=24):
        raise EventError("time", "is more than 24 hours in the future")
    if event.occurred_at < now - dt.timedelta(days=retention_days):
        raise EventError(
            "time", f"is older than the {retention_days}-day retention window; send backfills as a CSV import"
        )
