"""Data → Webhooks pages: add an endpoint (secret shown once), edit, rotate, test, the
delivery log and replay. Finance and admin only (the authorization matrix has every cell)."""

from __future__ import annotations

import pytest
from django.test import Client

from revops.events import emit
from revops.models import Role
from webhooks.crypto import decrypt
from webhooks.models import Attempt, AttemptKind, Delivery, DeliveryState, Endpoint
from webhooks.services import endpoint_create, endpoint_deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_fin(finance, with_totp):
    with_totp(finance)
    client = Client()
    client.force_login(finance)
    return client


def _add(client, **extra):
    data = {
        "name": "Ops",
        "url": "https://hooks.example.com/revops",
        "scope": "company",
        "event_types": ["alert.opened", "statement.paid"],
        "enabled": "on",
    } | extra
    return client.post("/data/webhooks/", data)


def test_finance_adds_an_endpoint_and_sees_its_secret_once(client_fin):
    response = _add(client_fin)
    endpoint = Endpoint.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/webhooks/{endpoint.pk}/"
    secret = decrypt(endpoint.secret)
    assert secret.startswith("whsec_") and secret not in endpoint.secret
    first = client_fin.get(response["Location"])
    assert secret in first.content.decode() and first["Cache-Control"] == "no-store"
    again = client_fin.get(response["Location"]).content.decode()
    assert secret not in again and "Ops" in again
    assert endpoint.event_types == ["alert.opened", "statement.paid"] and endpoint.team is None


def test_team_scope_is_stored(client_fin, team):
    _add(client_fin, scope=str(team.pk))
    assert Endpoint.objects.get().team == team


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "The URL must start with https:// (or http://)."),
        ("not a url", "Enter a valid URL."),
        ("https://user:pw@hooks.example.com/x", "Leave credentials out of the URL"),
    ],
)
def test_bad_url_is_refused_with_the_reason(client_fin, url, reason):
    response = _add(client_fin, url=url)
    assert response.status_code == 400 and reason in response.content.decode()
    assert not Endpoint.objects.exists()


def test_private_address_is_refused_unless_allowed(client_fin, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = _add(client_fin, url="http://127.0.0.1:9/hooks")
    assert response.status_code == 400
    assert "resolves to a private or loopback address (127.0.0.1)" in response.content.decode()


def test_no_event_type_is_refused(client_fin):
    response = _add(client_fin, event_types=[])
    assert response.status_code == 400 and "This field is required." in response.content.decode()


def test_rotate_shows_the_new_secret_once_and_keeps_the_old_signing(client_fin):
    created = endpoint_create(name="Ops", url="https://hooks.example.com/a", event_types=["alert.opened"])
    response = client_fin.post(f"/data/webhooks/{created.endpoint.pk}/rotate/", {"grace_hours": "24"})
    endpoint = Endpoint.objects.get()
    new = decrypt(endpoint.secret)
    assert new != created.secret and decrypt(endpoint.previous_secret) == created.secret
    page = client_fin.get(response["Location"]).content.decode()
    assert new in page and "The old one keeps signing beside it for 24 h." in page
    assert "the previous secret also signs until" in page


def test_rotate_with_a_bad_grace_period_changes_nothing(client_fin):
    created = endpoint_create(name="Ops", url="https://hooks.example.com/a", event_types=["alert.opened"])
    response = client_fin.post(f"/data/webhooks/{created.endpoint.pk}/rotate/", {"grace_hours": "500"})
    assert decrypt(Endpoint.objects.get().secret) == created.secret
    page = client_fin.get(response["Location"]).content.decode()
    assert "The secret was not rotated" in page and "less than or equal to 168" in page


def test_edit_disables_and_changes_the_subscriptions(client_fin):
    created = endpoint_create(name="Ops", url="https://hooks.example.com/a", event_types=["alert.opened"])
    response = client_fin.post(
        f"/data/webhooks/{created.endpoint.pk}/edit/",
        {
            "name": "Ops 2",
            "url": "https://hooks.example.com/b",
            "scope": "company",
            "event_types": ["review.finalized"],
        },
    )
    assert response.status_code == 302
    endpoint = Endpoint.objects.get()
    assert (endpoint.name, endpoint.url, endpoint.event_types, endpoint.enabled) == (
        "Ops 2",
        "https://hooks.example.com/b",
        ["review.finalized"],
        False,
    )


def test_delivery_log_shows_attempts_with_errors_and_responses(client_fin, receiver):
    created = endpoint_create(name="Ops", url=receiver.url, event_types=["alert.opened"])
    receiver.secrets.append(created.secret)
    receiver.status = 202
    emit("alert.opened", {"alert_id": 1, "account": {"external_id": "ACME", "name": "Acme"}})
    endpoint_deliver(endpoint_id=created.endpoint.pk)
    delivery = Delivery.objects.get()
    page = client_fin.get(f"/data/webhooks/{created.endpoint.pk}/").content.decode()
    assert delivery.message.webhook_id in page and "HTTP 202" in page and "Delivered" in page
    fragment = client_fin.get(f"/data/webhooks/{created.endpoint.pk}/?state=failed", headers={"HX-Request": "true"})
    assert "<html" not in fragment.content.decode() and "No deliveries in this state yet." in fragment.content.decode()
    detail = client_fin.get(f"/data/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert (
        "HTTP 202" in detail
        and "{&quot;status&quot;: 202}" in detail
        and "&quot;external_id&quot;: &quot;ACME&quot;" in detail
    )
    assert "None" not in detail


def test_replay_from_the_page_queues_a_replay_attempt(client_fin, receiver):
    created = endpoint_create(name="Ops", url=receiver.url, event_types=["alert.opened"])
    receiver.secrets.append(created.secret)
    emit("alert.opened", {"alert_id": 1})
    endpoint_deliver(endpoint_id=created.endpoint.pk)
    delivery = Delivery.objects.get()
    response = client_fin.post(f"/data/webhooks/deliveries/{delivery.pk}/replay/")
    assert response.status_code == 302
    replay = Attempt.objects.get(kind=AttemptKind.REPLAY)
    assert replay.sent_at is None and replay.requested_by.email == "finance-hooks@example.com"
    twice = client_fin.post(f"/data/webhooks/deliveries/{delivery.pk}/replay/", follow=True).content.decode()
    assert "A replay of this delivery is already queued." in twice


def test_send_a_test_event_queues_it_in_the_endpoints_sequence(client_fin):
    created = endpoint_create(name="Ops", url="https://hooks.example.com/a", event_types=["alert.opened"])
    response = client_fin.post(f"/data/webhooks/{created.endpoint.pk}/test/")
    delivery = Delivery.objects.get()
    assert response["Location"] == f"/data/webhooks/deliveries/{delivery.pk}/"
    assert (delivery.message.type, delivery.sequence, delivery.state) == ("webhook.test", 1, DeliveryState.PENDING)
    page = client_fin.get(response["Location"]).content.decode()
    assert "Not sent yet" in page and "None" not in page


def test_endpoint_list_counts_waiting_and_failed(client_fin):
    created = endpoint_create(name="Ops", url="https://hooks.example.com/a", event_types=["alert.opened"])
    emit("alert.opened", {"alert_id": 1})
    emit("alert.opened", {"alert_id": 2})
    Delivery.objects.filter(sequence=1).update(state=DeliveryState.FAILED)
    page = client_fin.get("/data/webhooks/").content.decode()
    assert f'href="/data/webhooks/{created.endpoint.pk}/"' in page
    assert '<td class="num">1</td>\n          <td class="num">1</td>' in page
    assert "None" not in page


def test_an_ae_cannot_see_webhooks(make_user, team):
    ae = make_user(Role.AE, team=team)
    client = Client()
    client.force_login(ae)
    assert client.get("/data/webhooks/").status_code == 403
