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
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_SOURCE = "default"
MAX_ID_LENGTH = 200
# usage_event.quantity is numeric(28, 6): exact, so more decimals are refused, never rounded.
QUANTITY_MAX_DECIMALS = 6
QUANTITY_MAX_INTEGER_DIGITS = 22
# RFC 3339: a date, "T" or space, a time, and a zone (Z or ±hh:mm). Naive times are refused.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


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
    text = value.strip()
    if not _RFC3339.match(text):
        if re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", text):
            raise EventError(name, f"'{text}' has no time zone; add Z or an offset such as +00:00")
        raise EventError(name, f"'{text[:60]}' is not an RFC 3339 timestamp (e.g. 2026-05-01T12:00:00Z)")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise EventError(name, f"'{text}' is not a valid date or time ({exc})") from None
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
    text = value.strip()
    try:
        quantity = Decimal(text)
    except InvalidOperation:
        raise EventError(name, f"'{text[:40]}' is not a number") from None
    if not quantity.is_finite():
        raise EventError(name, f"'{text}' is not a finite number")
    if quantity < 0:
        raise EventError(name, f"{text} is negative; usage quantities must be zero or more")
    exponent = quantity.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -QUANTITY_MAX_DECIMALS and quantity != quantity.quantize(Decimal(1).scaleb(-QUANTITY_MAX_DECIMALS)):
        raise EventError(name, f"{text} has more than {QUANTITY_MAX_DECIMALS} decimal places")
    if quantity.adjusted() >= QUANTITY_MAX_INTEGER_DIGITS:
        raise EventError(name, f"{text} is too large")
    return (
        quantity.quantize(Decimal(1).scaleb(-QUANTITY_MAX_DECIMALS)) if exponent < -QUANTITY_MAX_DECIMALS else quantity
    )


def parse_properties(value: Any, name: str = "properties") -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise EventError(name, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise EventError(name, "must be a JSON object")
    if _has_nul(value):
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


def parse_native(obj: Any) -> EventIn:
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
        properties=parse_properties(obj.get("properties")),
    )


def parse_cloudevent(obj: Any) -> EventIn:
    """CloudEvents 1.0 structured JSON: id, source, type = meter, subject = account, data.quantity."""
    if not isinstance(obj, dict):
        raise EventError("event", f"must be a JSON object, not {type(obj).__name__}")
    if obj.get("specversion") != "1.0":
        raise EventError("specversion", 'must be "1.0"')
    data = obj.get("data")
    if not isinstance(data, dict):
        raise EventError("data", "must be a JSON object with a quantity")
    properties = parse_properties({key: value for key, value in data.items() if key != "quantity"}, "data")
    return EventIn(
        source=parse_identifier(obj.get("source"), "source"),
        event_id=parse_identifier(obj.get("id"), "id"),
        account_ref=parse_identifier(obj.get("subject"), "subject"),
        meter_ref=parse_identifier(obj.get("type"), "type"),
        occurred_at=parse_time(obj.get("time")),
        quantity=parse_quantity(data.get("quantity"), "data.quantity"),
        properties=properties,
    )


def check_time_window(event: EventIn, *, now: dt.datetime, retention_days: int) -> None:
    """The API takes events from the retention window up to 24 h ahead; backfills use import."""
    if event.occurred_at > now + dt.timedelta(hours=24):
        raise EventError("time", "is more than 24 hours in the future")
    if event.occurred_at < now - dt.timedelta(days=retention_days):
        raise EventError(
            "time", f"is older than the {retention_days}-day retention window; send backfills as a CSV import"
        )
