"""POST /api/v1/events: every way a batch can be wrong, and what is kept when it is."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from revops.api_keys import api_key_create, api_key_revoke
from revops.db import side_connection
from revops.models import ApiKey, Role
from tests.usage.conftest import event
from usage.models import QuarantinedEvent, UsageEvent

pytestmark = pytest.mark.django_db

NOW = timezone.now()
RECENT = (NOW - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def recent_event(event_id, **kwargs):
    return event(event_id, time=RECENT, **kwargs)


def test_a_valid_batch_is_stored_with_exact_quantities(post_events, acme, meter):
    response = post_events([recent_event("a", quantity="0.000001"), recent_event("b", quantity=12.5)])

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "quarantined": 0, "rejected": []}
    assert sorted(UsageEvent.objects.values_list("quantity", flat=True)) == [Decimal("0.000001"), Decimal("12.5")]


def test_events_wrapped_in_an_object_are_accepted(post_events, acme, meter):
    response = post_events({"events": [recent_event("a")]})

    assert response.json()["accepted"] == 1


def test_properties_are_kept(post_events, acme, meter):
    post_events([recent_event("a", properties={"workload": "chat", "region": "eu-west"})])

    assert UsageEvent.objects.get().properties == {"workload": "chat", "region": "eu-west"}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"quantity": -1}, "quantity: -1 is negative"),
        ({"quantity": "abc"}, "quantity: 'abc' is not a number"),
        ({"quantity": "NaN"}, "quantity: 'NaN' is not a finite number"),
        ({"quantity": True}, "quantity: is required and must be a number"),
        ({"quantity": "1.1234567"}, "quantity: 1.1234567 has more than 6 decimal places"),
        ({"quantity": None}, "quantity: is required"),
        ({"time": "2026-11-20T10:00:00"}, "has no time zone"),
        ({"time": "yesterday"}, "is not an RFC 3339 timestamp"),
        ({"time": 1700000000}, "time: must be an RFC 3339 timestamp string"),
        ({"account": ""}, "account: is required"),
        ({"meter": ["x"]}, "meter: must be a string, not list"),
        ({"properties": "nope"}, "properties: is not valid JSON"),
        ({"properties": [1]}, "properties: must be a JSON object"),
    ],
)
def test_an_invalid_event_is_rejected_with_its_reason_and_the_rest_is_stored(post_events, acme, meter, bad, reason):
    response = post_events([recent_event("good"), {**recent_event("bad"), **bad}])

    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 1
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [(1, "bad")]
    assert reason in body["rejected"][0]["error"]


def test_missing_fields_are_named(post_events, acme, meter):
    response = post_events([{"account": "acme"}])

    assert response.json()["rejected"] == [{"index": 0, "id": None, "error": "id: is required"}]


def test_a_non_object_event_is_rejected(post_events, acme, meter):
    response = post_events([42])

    assert response.json()["rejected"][0]["error"] == "event: must be a JSON object, not int"


def test_future_and_too_old_events_are_rejected_with_that_reason(post_events, acme, meter, settings):
    settings.USAGE_RAW_RETENTION_DAYS = 35
    future = (NOW + dt.timedelta(hours=25)).isoformat()
    old = (NOW - dt.timedelta(days=36)).isoformat()

    body = post_events([recent_event("f") | {"time": future}, recent_event("o") | {"time": old}]).json()

    assert "more than 24 hours in the future" in body["rejected"][0]["error"]
    assert "older than the 35-day retention window" in body["rejected"][1]["error"]
    assert "CSV import" in body["rejected"][1]["error"]


def test_malformed_json_is_a_400_that_says_so(post_events):
    response = post_events('[{"id": "a",')

    assert response.status_code == 400
    assert response.json()["detail"].startswith("The body is not valid JSON")


def test_a_body_that_is_not_a_list_is_a_400(post_events):
    response = post_events({"id": "a"})

    assert response.status_code == 400
    assert "JSON array" in response.json()["detail"]


def test_more_than_5000_events_is_a_413(post_events):
    response = post_events([recent_event(str(i)) for i in range(5001)])

    assert response.status_code == 413
    assert "at most 5000 events" in response.json()["detail"]


def test_a_body_over_the_size_limit_is_a_413(post_events, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post_events([recent_event(str(i)) for i in range(50)])

    assert response.status_code == 413


def test_an_unsupported_content_type_is_a_415(post_events):
    response = post_events("id,account", content_type="text/csv")

    assert response.status_code == 415


def test_unknown_account_or_meter_is_quarantined_not_lost(post_events, acme, meter):
    body = post_events([recent_event("x", account="ghost"), recent_event("y", meter="gpu-hours")]).json()

    assert body["quarantined"] == 2
    assert dict(QuarantinedEvent.objects.values_list("event_id", "reason")) == {
        "x": "unknown account 'ghost'",
        "y": "unknown meter 'gpu-hours'",
    }
    assert not UsageEvent.objects.exists()


def test_duplicates_within_a_batch_and_across_batches_are_stored_once(post_events, acme, meter):
    first = post_events([recent_event("a"), recent_event("a"), recent_event("b")]).json()
    second = post_events([recent_event("a"), recent_event("b"), recent_event("c")]).json()

    assert (first["accepted"], first["duplicates"]) == (2, 1)
    assert (second["accepted"], second["duplicates"]) == (1, 2)
    assert UsageEvent.objects.count() == 3


def test_a_retry_with_the_same_id_but_another_time_is_a_duplicate(post_events, acme, meter):
    post_events([recent_event("a")])
    other_month = (NOW - dt.timedelta(days=20)).isoformat()

    body = post_events([recent_event("a") | {"time": other_month}]).json()

    assert body["duplicates"] == 1
    assert UsageEvent.objects.count() == 1


def test_the_same_id_from_another_source_is_another_event(post_events, acme, meter):
    body = post_events([recent_event("a", source="billing"), recent_event("a", source="gateway")]).json()

    assert body["accepted"] == 2


def test_cloudevents_batch_is_accepted(post_events, acme, meter):
    cloud = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "gateway",
        "type": "api-calls",
        "subject": "acme",
        "time": RECENT,
        "data": {"quantity": 3, "workload": "search"},
    }

    body = post_events([cloud], content_type="application/cloudevents-batch+json").json()

    assert body["accepted"] == 1
    stored = UsageEvent.objects.get()
    assert (stored.source, stored.event_id, stored.quantity) == ("gateway", "ce-1", Decimal(3))
    assert stored.properties == {"workload": "search"}


def test_a_cloudevent_without_specversion_is_rejected(post_events, acme, meter):
    body = post_events([{"id": "x"}], content_type="application/cloudevents-batch+json").json()

    assert body["rejected"][0]["error"] == 'specversion: is required ("1.0")'


def test_missing_key_is_a_401(post_events):
    response = post_events([], key=None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_a_401(post_events, write_key):
    api_key_revoke(key=write_key[0])

    assert post_events([]).status_code == 401


def test_a_key_is_inactive_with_its_creator(post_events, make_user):
    admin = make_user(Role.ADMIN, email="root@example.test")
    _, raw = api_key_create(name="pipeline", scopes=[ApiKey.Scope.EVENTS_WRITE], created_by=admin)
    assert post_events([], key=raw).status_code == 200

    admin.is_active = False
    admin.save()
    response = post_events([event("e1")], key=raw)

    assert response.status_code == 403
    assert "root@example.test, who is no longer active" in response.json()["detail"]
    assert not UsageEvent.objects.exists()


def test_key_without_the_write_scope_is_a_403(post_events, ae):
    _, raw = api_key_create(name="reader", scopes=[ApiKey.Scope.READ], acts_as=ae)

    response = post_events([], key=raw)

    assert response.status_code == 403
    assert "events:write" in response.json()["detail"]


def test_key_over_its_rate_limit_gets_429_with_retry_after(post_events):
    _, raw = api_key_create(name="tiny", scopes=[ApiKey.Scope.EVENTS_WRITE], rate_limit_per_minute=2)

    codes = [post_events([], key=raw).status_code for _ in range(3)]
    limited = post_events([], key=raw)

    assert codes == [200, 200, 429]
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_using_a_key_records_when_it_was_last_used(post_events, write_key):
    post_events([])

    write_key[0].refresh_from_db()
    assert write_key[0].last_used_at is not None


def test_only_a_hash_of_the_key_is_stored(write_key):
    key, raw = write_key

    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())


@pytest.mark.django_db(transaction=True)
def test_accepted_events_are_committed_before_the_response(post_events, acme, meter):
    response = post_events([recent_event("committed")])
    assert response.status_code == 200

    # A separate connection sees them: the answer came after COMMIT, not before.
    with side_connection() as other:
        count = other.execute("SELECT count(*) FROM usage_event WHERE event_id = 'committed'").fetchone()[0]
    assert count == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_posted_concurrently_is_stored_once(post_events, acme, meter):
    batch = [recent_event(f"e{i}") for i in range(300)]
    results = []

    def send():
        try:
            results.append(post_events(batch).json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r["accepted"] for r in results) == 300
    assert sum(r["duplicates"] for r in results) == 900
    assert UsageEvent.objects.count() == 300


def test_the_openapi_schema_documents_the_endpoint(client):
    schema = client.get("/api/v1/openapi.json").json()

    operation = schema["paths"]["/api/v1/events"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/cloudevents-batch+json",
        "application/cloudevents+json",
    }
    assert {"200", "400", "401", "403", "413", "415", "429"} <= set(operation["responses"])
    assert json.dumps(schema)  # serializable


def test_api_docs_page_is_served(client):
    assert client.get("/api/v1/docs").status_code == 200
