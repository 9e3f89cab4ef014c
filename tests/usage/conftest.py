from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import Account, Segment
from revops.api_keys import api_key_create
from revops.models import ApiKey
from usage.models import Meter, MeterTier


@pytest.fixture
def acme(db):
    return Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)


@pytest.fixture
def meter(db):
    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="0.001")
    return meter


@pytest.fixture
def write_key(db):
    return api_key_create(name="ingest", scopes=[ApiKey.Scope.EVENTS_WRITE])


@pytest.fixture
def post_events(write_key):
    """POST a batch to /api/v1/events with the write key; returns the response."""
    _, raw = write_key

    def post(body, *, content_type="application/json", key=raw, client=None):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return (client or Client()).post("/api/v1/events", data, content_type=content_type, headers=headers)

    return post


def event(event_id: str, *, account="acme", meter="api-calls", time="2026-11-20T10:00:00Z", quantity=1, **extra):
    return {"id": event_id, "account": account, "meter": meter, "time": time, "quantity": quantity, **extra}
