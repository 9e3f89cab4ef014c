"""CloudEvents 1.0 in, as the specification and its JSON format define them.

Valid events are produced by the CNCF CloudEvents SDK (``cloudevents``) in each content
mode it speaks (structured, binary, data_base64) and sent over HTTP; invalid envelopes are
the ones the specification rules out, each refused with the attribute at fault.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.test import Client
from django.utils import timezone

from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
RECENT = timezone.now() - dt.timedelta(hours=1)


def sdk_event(event_id: str, **attributes) -> CloudEvent:
    data = attributes.pop("data", {"quantity": 3, "workload": "search"})
    return CloudEvent(
        {
            "id": event_id,
            "source": "//gateway/eu",
            "type": "api-calls",
            "subject": "acme",
            "time": RECENT,
            **attributes,
        },
        data,
    )


@pytest.fixture
def send(write_key):
    _, raw = write_key

    def send(body: bytes, headers: dict[str, str]):
        headers = {"Authorization": f"Bearer {raw}", **headers}
        content_type = headers.pop("content-type", headers.pop("Content-Type", "application/json"))
        return Client(raise_request_exception=False).post(
            "/api/v1/events", body, content_type=content_type, headers=headers
        )

    return send


def test_a_structured_event_from_the_sdk_is_stored(send, acme, meter):
    message = to_structured(sdk_event("s-1"), JSONFormat())

    response = send(message.body, dict(message.headers))

    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "quarantined": 0, "rejected": []}
    stored = UsageEvent.objects.get()
    assert (stored.source, stored.event_id, stored.quantity, stored.properties) == (
        "//gateway/eu",
        "s-1",
        Decimal(3),
        {"workload": "search"},
    )


def test_a_binary_mode_event_from_the_sdk_is_stored_and_a_retry_is_a_duplicate(send, acme, meter):
    message = to_binary(sdk_event("b-1", datacontenttype="application/json", region="eu1"), JSONFormat())
    assert "ce-specversion" in message.headers and json.loads(message.body) == {"quantity": 3, "workload": "search"}

    first, retry = send(message.body, dict(message.headers)), send(message.body, dict(message.headers))

    assert first.json()["accepted"] == 1 and retry.json()["duplicates"] == 1
    assert UsageEvent.objects.get().event_id == "b-1"


def test_data_base64_holding_json_is_decoded(send, acme, meter):
    envelope = json.loads(to_structured(sdk_event("d-1"), JSONFormat()).body)
    envelope["data_base64"] = base64.b64encode(json.dumps(envelope.pop("data")).encode()).decode()

    response = send(json.dumps(envelope).encode(), {"content-type": STRUCTURED})

    assert response.status_code == 200 and response.json()["accepted"] == 1


def test_a_batch_of_sdk_events_with_null_attributes_is_stored(send, acme, meter):
    events = [json.loads(to_structured(sdk_event(f"n-{i}"), JSONFormat()).body) for i in range(3)]
    events[0]["dataschema"] = None  # the JSON format: null is the attribute being absent

    response = send(json.dumps(events).encode(), {"content-type": BATCH})

    assert response.json() == {"accepted": 3, "duplicates": 0, "quarantined": 0, "rejected": []}


def valid(**changes) -> dict:
    envelope = {
        "specversion": "1.0",
        "id": "x-1",
        "source": "gateway",
        "type": "api-calls",
        "subject": "acme",
        "time": RECENT.isoformat(),
        "data": {"quantity": 1},
    }
    for name, value in changes.items():
        if value is ...:
            envelope.pop(name, None)
        else:
            envelope[name] = value
    return envelope


INVALID = {
    "upper-case attribute name": (valid(Region="eu"), "Region"),
    "attribute name with a hyphen": (valid(**{"my-ext": "x"}), "my-ext"),
    "attribute name with an underscore": (valid(my_ext="x"), "my_ext"),
    "specversion a number": (valid(specversion=1.0), "specversion"),
    "specversion 0.3": (valid(specversion="0.3"), "specversion"),
    "id empty": (valid(id=""), "id"),
    "id a number": (valid(id=7), "id"),
    "source empty": (valid(source=""), "source"),
    "source with a space": (valid(source="my gateway"), "source"),
    "type missing": (valid(type=...), "type"),
    "type an object": (valid(type={"meter": "api-calls"}), "type"),
    "subject empty": (valid(subject=""), "subject"),
    "subject missing": (valid(subject=...), "subject"),
    "time empty": (valid(time=""), "time"),
    "time not RFC 3339": (valid(time="yesterday"), "time"),
    "dataschema relative": (valid(dataschema="schemas/usage.json"), "dataschema"),
    "dataschema empty": (valid(dataschema=""), "dataschema"),
    "datacontenttype empty": (valid(datacontenttype=""), "datacontenttype"),
    "datacontenttype not a media type": (valid(datacontenttype="json"), "datacontenttype"),
    "datacontenttype not JSON": (valid(datacontenttype="text/plain", data="3"), "datacontenttype"),
    "extension an object": (valid(region={"name": "eu"}), "region"),
    "extension an array": (valid(tags=["a"]), "tags"),
    "extension a fraction": (valid(weight=0.5), "weight"),
    "extension beyond 32 bits": (valid(count=2**31), "count"),
    "data and data_base64 both": (valid(data_base64=base64.b64encode(b'{"quantity": 1}').decode()), "data_base64"),
    "data_base64 not base64": (valid(data=..., data_base64="@@not base64@@"), "data_base64"),
    "data_base64 not JSON": (valid(data=..., data_base64=base64.b64encode(b"\xff\xfe").decode()), "data_base64"),
    "data a string": (valid(data="quantity=1"), "data"),
    "data missing": (valid(data=...), "data"),
    "quantity missing": (valid(data={"workload": "x"}), "data.quantity"),
}


@pytest.mark.parametrize(("envelope", "field"), INVALID.values(), ids=INVALID.keys())
def test_an_envelope_the_specification_rules_out_is_refused_naming_the_attribute(send, acme, meter, envelope, field):
    in_batch = send(json.dumps([envelope]).encode(), {"content-type": BATCH})
    alone = send(json.dumps(envelope).encode(), {"content-type": STRUCTURED})

    assert in_batch.status_code == 200
    [rejection] = in_batch.json()["rejected"]
    assert rejection["error"].startswith(f"{field}: "), rejection
    assert alone.status_code == 400
    assert alone.json()["detail"] == f"The CloudEvent is invalid: {rejection['error']}"
    assert not UsageEvent.objects.exists()


def test_binary_mode_with_a_body_that_is_not_json_is_a_400(send, acme, meter):
    message = to_binary(sdk_event("t-1", datacontenttype="text/plain", data="three"), JSONFormat())

    response = send(message.body, dict(message.headers))

    assert response.status_code == 400 and "datacontenttype" in response.json()["detail"]
    assert not UsageEvent.objects.exists()


def test_percent_encoded_binary_headers_are_decoded(send, acme, meter):
    message = to_binary(sdk_event("b 2", source="/gateway/eu west"), JSONFormat())
    assert "%20" in message.headers["ce-id"]

    response = send(message.body, dict(message.headers))

    assert response.status_code == 400 and "source" in response.json()["detail"]  # a space is no URI-reference
    ok = to_binary(sdk_event("b 2", source="/gateway/eu"), JSONFormat())
    assert send(ok.body, dict(ok.headers)).json()["accepted"] == 1
    assert UsageEvent.objects.get().event_id == "b 2"
