"""CloudEvents 1.0 in: the JSON format (structured, batched) and the HTTP binary mode.

A usage event maps onto a CloudEvent as ``id`` / ``source`` (the deduplication identity),
``type`` = the meter key, ``subject`` = the account's external id, ``time`` = when the usage
happened and ``data`` = ``{"quantity": …, other properties…}``.

The envelope is checked as the specification and its JSON format require, so an envelope
another CloudEvents consumer would refuse is refused here too, with the attribute at fault:

* attribute names are lower-case ASCII letters and digits (``data`` and ``data_base64`` are
  the JSON format's members, not attributes); a JSON ``null`` is an absent attribute;
* ``specversion`` is the string ``"1.0"``; ``id``, ``source`` and ``type`` are non-empty
  strings, ``source`` a URI-reference; optional attributes, when present, are not empty:
  ``subject`` a string, ``time`` an RFC 3339 timestamp, ``dataschema`` an absolute URI,
  ``datacontenttype`` an RFC 2046 media type;
* extension attributes hold CloudEvents types only: strings, booleans and integers within
  the signed 32-bit range (no objects, arrays or fractions);
* ``data`` and ``data_base64`` are never both present; ``data_base64`` is valid base64.

Beyond the specification, revops needs what it meters: a ``subject`` and a ``time``, and data
that is a JSON object (``datacontenttype`` JSON, or absent) holding a ``quantity``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from usage.ingestion.events import EventError, EventIn, parse_identifier, parse_properties, parse_quantity, parse_time

SPECVERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
DATA_MEMBERS = ("data", "data_base64")
_NAME = re.compile(r"[a-z0-9]+")
# RFC 2046 / 6838: type "/" subtype, optional parameters.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;.*)?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# A URI-reference never holds spaces, controls or these (RFC 3986 §2).
_NOT_IN_URI = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]')
_INT32 = (-(2**31), 2**31 - 1)


def is_json_media_type(value: str) -> bool:
    """application/json, text/json or any ``+json`` type, with or without parameters."""
    essence = value.split(";", 1)[0].strip().lower()
    return essence in ("application/json", "text/json") or essence.endswith("+json")


def _string(obj: dict, name: str, *, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise EventError(name, "is required")
        return None
    if not isinstance(value, str):
        raise EventError(name, f"must be a string, not {_json_type(value)}")
    if value == "":
        raise EventError(name, "must not be empty when present (leave the attribute out instead)")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else type(value).__name__


def _check_extension(name: str, value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral_value()):
        number = int(value)
        if not _INT32[0] <= number <= _INT32[1]:
            raise EventError(name, f"is an integer outside the CloudEvents range ({_INT32[0]} to {_INT32[1]})")
        if isinstance(value, Decimal) and value.as_tuple().exponent != 0:
            raise EventError(name, "must be an integer, a string or a boolean, not a fraction")
        return
    kind = "a fraction" if isinstance(value, Decimal | float) else _json_type(value)
    raise EventError(name, f"must be a string, an integer or a boolean (a CloudEvents type), not {kind}")


def _data(obj: dict, content_type: str | None) -> dict:
    has_data, has_base64 = obj.get("data") is not None, obj.get("data_base64") is not None
    if has_data and has_base64:
        raise EventError("data_base64", "cannot be present together with data (CloudEvents JSON format)")
    if content_type is not None and not is_json_media_type(content_type):
        raise EventError(
            "datacontenttype", f"is {content_type}; usage data must be JSON (application/json) holding a quantity"
        )
    if has_base64:
        encoded = obj["data_base64"]
        if not isinstance(encoded, str):
            raise EventError("data_base64", f"must be a base64 string, not {_json_type(encoded)}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise EventError("data_base64", "is not valid base64") from None
        try:
            data = json.loads(raw, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise EventError("data_base64", "does not decode to JSON (usage data is a JSON object)") from None
    elif has_data:
        data = obj["data"]
    else:
        raise EventError("data", "is required: a JSON object with the quantity used")
    if not isinstance(data, dict):
        raise EventError("data", f"must be a JSON object with a quantity, not {_json_type(data)}")
    return data


def parse_cloudevent(obj: Any, *, may_hold_nul: bool = True) -> EventIn:
    """One CloudEvent (a decoded JSON object) as a usage event, or ``EventError``."""
    if not isinstance(obj, dict):
        raise EventError("event", f"must be a JSON object, not {_json_type(obj)}")
    present = {name: value for name, value in obj.items() if value is not None}  # null = absent
    for name in present:
        if name not in DATA_MEMBERS and not _NAME.fullmatch(name):
            shown = name[:40].replace("\x00", "\\0")
            raise EventError(shown, "is not a valid attribute name: only lower-case letters a-z and digits 0-9")
    if "specversion" not in present:
        raise EventError("specversion", 'is required ("1.0")')
    if present["specversion"] != SPECVERSION:
        raise EventError("specversion", f'must be "1.0", not {json.dumps(present["specversion"], default=str)[:40]}')
    for name in ("id", "type"):
        _string(present, name, required=True)
    source = _string(present, "source", required=True)
    if _NOT_IN_URI.search(source):
        raise EventError("source", "must be a URI-reference (no spaces, quotes or control characters)")
    subject = _string(present, "subject", required=False)
    if subject is None:
        raise EventError("subject", "is required: the account's external id")
    time = _string(present, "time", required=False)
    if time is None:
        raise EventError("time", "is required: when the usage happened (RFC 3339)")
    schema = _string(present, "dataschema", required=False)
    if schema is not None and (not _SCHEME.match(schema) or _NOT_IN_URI.search(schema)):
        raise EventError("dataschema", "must be an absolute URI")
    content_type = _string(present, "datacontenttype", required=False)
    if content_type is not None and not _MEDIA_TYPE.fullmatch(content_type):
        raise EventError("datacontenttype", "must be a media type such as application/json")
    core = {"specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype", *DATA_MEMBERS}
    for name, value in present.items():
        if name not in core:
            _check_extension(name, value)
    data = _data(present, content_type)
    properties = parse_properties(
        {key: value for key, value in data.items() if key != "quantity"}, "data", may_hold_nul=may_hold_nul
    )
    return EventIn(
        source=parse_identifier(source, "source"),
        event_id=parse_identifier(present["id"], "id"),
        account_ref=parse_identifier(subject, "subject"),
        meter_ref=parse_identifier(present["type"], "type"),
        occurred_at=parse_time(time),
        quantity=parse_quantity(data.get("quantity"), "data.quantity"),
        properties=properties,
    )


BINARY_HEADER_PREFIX = "ce-"


def binary_mode_envelope(headers, content_type: str, body: bytes) -> dict:
    """The event of an HTTP binary-mode request: attributes from ``ce-*`` headers (percent-
    decoded), ``datacontenttype`` from Content-Type, the body as the data."""
    obj: dict[str, Any] = {}
    for header, value in headers.items():
        name = header.lower()
        if name.startswith(BINARY_HEADER_PREFIX):
            obj[name[len(BINARY_HEADER_PREFIX) :]] = unquote(value)
    obj["datacontenttype"] = content_type
    if not is_json_media_type(content_type):
        raise EventError("datacontenttype", f"is {content_type}; usage data must be JSON (application/json)")
    try:
        obj["data"] = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise EventError("data", "the body is not valid JSON") from None
    except RecursionError:
        raise EventError("data", "the body nests arrays or objects too deeply") from None
    return obj
