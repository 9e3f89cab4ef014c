"""POST /api/v1/events: metered usage in, acknowledged only once committed."""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from ninja.errors import HttpError

from revops.api_auth import ApiError, require_scope
from revops.models import ApiKey
from usage.ingestion.cloudevents import BATCH, STRUCTURED, binary_mode_envelope, parse_cloudevent
from usage.ingestion.events import EventError, check_time_window, parse_native
from usage.ingestion.ingest import ingest_batch

router = Router(tags=["usage"])

MAX_BATCH = 5000
CLOUDEVENTS_BATCH = BATCH


class Rejected(Schema):
    index: int
    id: str | None
    error: str


class IngestOut(Schema):
    accepted: int
    duplicates: int
    quarantined: int
    rejected: list[Rejected]


_NATIVE_EVENT = {
    "type": "object",
    "required": ["id", "account", "meter", "time", "quantity"],
    "properties": {
        "id": {"type": "string", "maxLength": 200, "description": "Unique per source; retries reuse it."},
        "source": {"type": "string", "maxLength": 200, "description": 'Defaults to "default".'},
        "account": {"type": "string", "description": "The account's external id."},
        "meter": {"type": "string", "description": "The meter key."},
        "time": {"type": "string", "format": "date-time", "description": "RFC 3339 with a time zone."},
        "quantity": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\d+(\.\d{1,6})?$"}]},
        "properties": {"type": "object", "description": "workload, region, model, feature, …"},
    },
}
_CLOUDEVENT = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "subject", "time", "data"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string"},
        "source": {"type": "string"},
        "type": {"type": "string", "description": "The meter key."},
        "subject": {"type": "string", "description": "The account's external id."},
        "time": {"type": "string", "format": "date-time"},
        "data": {"type": "object", "required": ["quantity"], "properties": {"quantity": {"type": "number"}}},
    },
}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": _NATIVE_EVENT, "maxItems": MAX_BATCH},
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": _NATIVE_EVENT, "maxItems": MAX_BATCH}},
                    },
                ]
            }
        },
        CLOUDEVENTS_BATCH: {"schema": {"type": "array", "items": _CLOUDEVENT, "maxItems": MAX_BATCH}},
        STRUCTURED: {"schema": _CLOUDEVENT},
    },
}


@router.post(
    "/events",
    response={200: IngestOut, 400: ApiError, 401: ApiError, 403: ApiError, 413: ApiError, 415: ApiError, 429: ApiError},
    summary="Send a batch of usage events",
    description=(
        f"At most {MAX_BATCH} events per request, native JSON or CloudEvents 1.0: a batch "
        f"(`Content-Type: {CLOUDEVENTS_BATCH}`), one structured event (`{STRUCTURED}`) or one "
        "event in HTTP binary mode (`ce-*` headers, the data as an `application/json` body). "
        "In a batch, valid events are stored even when others are rejected; a single CloudEvent "
        "that is invalid is a 400 naming the attribute. The answer comes after the events are "
        "committed. Events are deduplicated on (source, id); unknown accounts or meters are "
        "quarantined and replayed later."
    ),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
def post_events(request: HttpRequest):
    require_scope(request, ApiKey.Scope.EVENTS_WRITE)
    content_type = request.content_type or "application/json"
    binary = "ce-specversion" in request.headers  # CloudEvents HTTP binary mode: attributes in headers
    if not binary and content_type not in ("application/json", CLOUDEVENTS_BATCH, STRUCTURED):
        raise HttpError(
            415,
            f"Content-Type must be application/json, {STRUCTURED} or {CLOUDEVENTS_BATCH}, not {content_type}.",
        )
    try:
        body = request.body
    except RequestDataTooBig:
        raise HttpError(413, f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.") from None
    now = timezone.now()
    may_hold_nul = b"\\u0000" in body
    if binary or content_type == STRUCTURED:
        return _one_cloudevent(request, content_type, body, now=now, may_hold_nul=may_hold_nul or binary)
    try:
        payload = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HttpError(400, "The body nests arrays or objects too deeply; an event is one flat object.") from None

    cloudevents = content_type == CLOUDEVENTS_BATCH
    if isinstance(payload, dict) and not cloudevents and "events" in payload:
        payload = payload["events"]
    if not isinstance(payload, list):
        shape = "a JSON array of CloudEvents" if cloudevents else 'a JSON array of events or {"events": [...]}'
        raise HttpError(400, f"The body must be {shape}.")
    if len(payload) > MAX_BATCH:
        raise HttpError(413, f"A batch holds at most {MAX_BATCH} events; this one has {len(payload)}.")

    parse = parse_cloudevent if cloudevents else parse_native
    # JSON can only carry a NUL escaped: without "\u0000" in the body, no property holds one
    # and the per-event search through nested properties is skipped.
    retention = settings.USAGE_RAW_RETENTION_DAYS
    valid, rejected = [], []
    for index, obj in enumerate(payload):
        try:
            event = parse(obj, may_hold_nul=may_hold_nul)
            check_time_window(event, now=now, retention_days=retention)
        except EventError as exc:
            raw_id = obj.get("id") if isinstance(obj, dict) else None
            rejected.append({"index": index, "id": None if raw_id is None else str(raw_id)[:200], "error": str(exc)})
            continue
        valid.append(event)
    return _stored(valid, rejected, now=now)


def _one_cloudevent(request: HttpRequest, content_type: str, body: bytes, *, now, may_hold_nul: bool):
    """A single CloudEvent, structured (the envelope is the body) or binary (``ce-*``
    headers, the body is the data). The request is the event, so an invalid one is a 400
    that names the attribute, not a 200 with a rejection."""
    try:
        if content_type == STRUCTURED and "ce-specversion" not in request.headers:
            try:
                obj = json.loads(body, parse_float=Decimal)
            except (ValueError, UnicodeDecodeError) as exc:
                raise HttpError(400, f"The body is not valid JSON: {exc}") from None
            except RecursionError:
                raise HttpError(400, "The body nests arrays or objects too deeply.") from None
        else:
            obj = binary_mode_envelope(request.headers, content_type, body)
        event = parse_cloudevent(obj, may_hold_nul=may_hold_nul)
        check_time_window(event, now=now, retention_days=settings.USAGE_RAW_RETENTION_DAYS)
    except EventError as exc:
        raise HttpError(400, f"The CloudEvent is invalid: {exc}") from None
    return _stored([event], [], now=now)


def _stored(valid: list, rejected: list, *, now) -> dict:
    result = ingest_batch(valid, received_at=now)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
        "rejected": rejected,
    }
