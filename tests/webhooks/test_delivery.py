"""The sender: signed, in order, exactly once per endpoint, retried on the schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from revops.events import emit, emit_many
from webhooks.models import Attempt, AttemptKind, Delivery, DeliveryState, Endpoint, Message
from webhooks.services import (
    FAILING_AFTER,
    MAX_ATTEMPTS,
    attempt_replay_execute,
    delivery_replay_request,
    due_endpoint_ids,
    endpoint_create,
    endpoint_deliver,
    endpoint_rotate_secret,
    endpoint_send_test,
    expired_secrets_drop,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def company_endpoint(receiver):
    created = endpoint_create(name="Ops hooks", url=receiver.url, event_types=["alert.opened", "alert.cleared"])
    receiver.secrets.append(created.secret)
    return created.endpoint


def _alert(n: int) -> dict:
    return {"alert_id": n, "account": {"external_id": f"ACME-{n}", "name": f"Acme {n}"}, "severity": "high"}


def test_receiver_down_for_ten_minutes_gets_each_message_once_in_order(receiver, company_endpoint, moved_clock):
    receiver.stop()
    with transaction.atomic():
        for n in (1, 2, 3):
            emit("alert.opened", _alert(n))
    messages = list(Message.objects.order_by("id").values_list("webhook_id", flat=True))
    deliveries = list(Delivery.objects.order_by("sequence"))
    assert [d.sequence for d in deliveries] == [1, 2, 3]

    # t = 0: the head fails (connection refused); the two behind it are not tried.
    assert endpoint_deliver(endpoint_id=company_endpoint.pk).sent == 1
    # t = 5 s (2nd attempt), t = 5 min 5 s (3rd): still down.
    moved_clock.advance(seconds=5)
    assert endpoint_deliver(endpoint_id=company_endpoint.pk).sent == 1
    moved_clock.advance(minutes=5)
    assert endpoint_deliver(endpoint_id=company_endpoint.pk).sent == 1
    # t = 10 min 5 s: the receiver is back; the next try is due at 35 min 5 s, not before.
    moved_clock.advance(minutes=5)
    receiver.start()
    outcome = endpoint_deliver(endpoint_id=company_endpoint.pk)
    assert outcome.sent == 0
    assert outcome.wait_until == deliveries[0].created_at + dt.timedelta(minutes=35, seconds=5)
    assert receiver.got == []
    moved_clock.advance(minutes=25)
    assert endpoint_deliver(endpoint_id=company_endpoint.pk).sent == 3
    # Nothing is sent twice, however often the sender runs.
    assert endpoint_deliver(endpoint_id=company_endpoint.pk).sent == 0
    moved_clock.advance(hours=30)
    assert endpoint_deliver(endpoint_id=company_endpoint.pk).sent == 0

    assert receiver.ids() == messages
    assert [r.data["alert_id"] for r in receiver.got] == [1, 2, 3]
    assert all(r.type == "alert.opened" and r.signatures == 1 for r in receiver.got)
    assert receiver.refused == []
    head, second, third = (Delivery.objects.get(pk=d.pk) for d in deliveries)
    assert [head.state, second.state, third.state] == [DeliveryState.DELIVERED] * 3
    # The head: 3 refused connections, then 204; the others went through on their first try.
    log = list(head.attempt_log.order_by("id"))
    assert [a.status for a in log] == [None, None, None, 204]
    assert all("could not connect" in a.error and "refused" in a.error.lower() for a in log[:3])
    assert log[3].error == ""
    assert [second.attempts, third.attempts] == [1, 1]


def test_delivery_fails_after_eight_attempts_and_releases_the_queue_behind_it(receiver, company_endpoint, moved_clock):
    receiver.status = 500
    with transaction.atomic():
        emit_many("alert.opened", [(_alert(1), ()), (_alert(2), ())])
    receiver.status = 500
    # 0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts in 27 h 35 min 5 s.
    for wait in (0, 5, 300, 1800, 7200, 18000, 36000, 36000):
        moved_clock.advance(seconds=wait)
        endpoint_deliver(endpoint_id=company_endpoint.pk)
    first, second = Delivery.objects.order_by("sequence")
    assert (first.state, first.attempts, first.last_status) == (DeliveryState.FAILED, MAX_ATTEMPTS, 500)
    assert first.last_error == "HTTP 500"
    # The second waited its turn; as old as its schedule by now, it gets one attempt.
    assert (second.state, second.attempts) == (DeliveryState.FAILED, 1)
    # Eight verified copies of the first (the receiver answered 500, so we retried), one of the second.
    assert [r.data["alert_id"] for r in receiver.got] == [1] * 8 + [2]
    endpoint = Endpoint.objects.get(pk=company_endpoint.pk)
    assert endpoint.consecutive_failures == 2
    assert endpoint.failing_since is None  # failing from FAILING_AFTER (3) in a row


def test_endpoint_is_failing_after_three_failed_deliveries_and_recovers_on_a_delivery(
    receiver, company_endpoint, moved_clock
):
    receiver.status = 410
    with transaction.atomic():
        emit_many("alert.opened", [(_alert(n), ()) for n in range(1, FAILING_AFTER + 2)])
    endpoint_deliver(endpoint_id=company_endpoint.pk)
    moved_clock.advance(hours=28)  # past the first's window: each remaining one gets a single attempt
    for _ in range(MAX_ATTEMPTS):
        endpoint_deliver(endpoint_id=company_endpoint.pk)
        moved_clock.advance(hours=11)
    endpoint = Endpoint.objects.get(pk=company_endpoint.pk)
    assert endpoint.consecutive_failures == FAILING_AFTER + 1
    assert endpoint.failing_since is not None
    receiver.status = 200
    endpoint_send_test(endpoint=endpoint)
    assert endpoint_deliver(endpoint_id=endpoint.pk).delivered == 1
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)


def test_team_endpoint_gets_only_its_teams_events_and_company_endpoint_gets_all(receiver, company_endpoint, team):
    other = endpoint_create(name="East only", url=receiver.url, event_types=["alert.opened"], team=team)
    receiver.secrets.append(other.secret)
    with transaction.atomic():
        emit("alert.opened", _alert(1), team_ids=[team.pk])
        emit("alert.opened", _alert(2), team_ids=[team.pk + 1000])
        emit("alert.opened", _alert(3))
        emit("statement.approved", {"statement_id": 9})  # nobody subscribes: nothing is written
    assert Message.objects.count() == 3
    assert list(Delivery.objects.filter(endpoint=other.endpoint).values_list("sequence", flat=True)) == [1]
    assert Delivery.objects.filter(endpoint=company_endpoint).count() == 3


def test_disabled_endpoint_gets_no_deliveries(receiver, company_endpoint):
    Endpoint.objects.filter(pk=company_endpoint.pk).update(enabled=False)
    emit("alert.opened", _alert(1))
    assert Delivery.objects.count() == 0 and Message.objects.count() == 0


def test_rolled_back_change_queues_nothing(company_endpoint):
    def change_that_fails() -> None:
        with transaction.atomic():
            emit("alert.opened", _alert(1))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert Delivery.objects.count() == 0


def test_second_sender_finds_the_endpoint_locked(company_endpoint):
    from django.db import connections

    emit("alert.opened", _alert(1))
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            from webhooks.services import _lock_key

            cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key(company_endpoint.pk)])
            outcome = endpoint_deliver(endpoint_id=company_endpoint.pk)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(company_endpoint.pk)])
    finally:
        other.close()
    assert outcome.busy and outcome.sent == 0
    assert Attempt.objects.count() == 0


def test_rotation_signs_with_both_secrets_during_the_grace_period(receiver, company_endpoint, moved_clock):
    old_secret = receiver.secrets[0]
    rotated = endpoint_rotate_secret(endpoint=company_endpoint)
    assert rotated.secret != old_secret and rotated.secret.startswith("whsec_")
    # A receiver still on the old secret accepts it; one on the new secret too.
    receiver.secrets = [old_secret]
    emit("alert.opened", _alert(1))
    endpoint_deliver(endpoint_id=company_endpoint.pk)
    receiver.secrets = [rotated.secret]
    emit("alert.opened", _alert(2))
    endpoint_deliver(endpoint_id=company_endpoint.pk)
    assert [(r.data["alert_id"], r.signatures) for r in receiver.got] == [(1, 2), (2, 2)]
    # 24 h later the old one is dropped: one signature, which the old secret cannot verify.
    moved_clock.advance(hours=24, seconds=1)
    assert expired_secrets_drop() == 1
    receiver.secrets = [old_secret]
    emit("alert.opened", _alert(3))
    endpoint_deliver(endpoint_id=company_endpoint.pk)
    assert len(receiver.got) == 2 and len(receiver.refused) == 1
    assert Delivery.objects.get(sequence=3).last_status == 401


def test_replay_resends_with_the_same_webhook_id_and_is_logged(receiver, company_endpoint, finance):
    emit("alert.opened", _alert(1))
    endpoint_deliver(endpoint_id=company_endpoint.pk)
    delivery = Delivery.objects.get()
    attempt = delivery_replay_request(delivery=delivery, requested_by=finance)
    assert attempt_replay_execute(attempt.pk).status == 204
    assert attempt_replay_execute(attempt.pk) is None  # a redelivered task sends nothing
    assert receiver.ids() == [delivery.message.webhook_id] * 2
    kinds = list(delivery.attempt_log.values_list("kind", "requested_by__email", "status"))
    assert kinds == [(AttemptKind.SCHEDULED, None, 204), (AttemptKind.REPLAY, finance.email, 204)]


def test_replay_of_a_failed_delivery_that_succeeds_marks_it_delivered(receiver, company_endpoint, moved_clock):
    receiver.status = 500
    emit("alert.opened", _alert(1))
    for wait in (0, 5, 300, 1800, 7200, 18000, 36000, 36000):
        moved_clock.advance(seconds=wait)
        endpoint_deliver(endpoint_id=company_endpoint.pk)
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    receiver.status = 200
    attempt_replay_execute(delivery_replay_request(delivery=delivery).pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_status) == (DeliveryState.DELIVERED, 200)


def test_pending_delivery_cannot_be_replayed(company_endpoint):
    from revops.errors import ApplicationError

    emit("alert.opened", _alert(1))
    with pytest.raises(ApplicationError, match="still queued"):
        delivery_replay_request(delivery=Delivery.objects.get())


def test_sweep_finds_endpoints_whose_head_is_due(receiver, company_endpoint, moved_clock):
    receiver.stop()
    emit("alert.opened", _alert(1))
    assert due_endpoint_ids() == [company_endpoint.pk]
    endpoint_deliver(endpoint_id=company_endpoint.pk)
    assert due_endpoint_ids() == []  # waiting 5 s for its retry
    moved_clock.advance(seconds=5)
    assert due_endpoint_ids() == [company_endpoint.pk]


def test_body_is_the_standard_webhooks_shape_and_verifies(receiver, company_endpoint):
    emit("alert.opened", _alert(7), occurred_at=dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC))
    message = Message.objects.get()
    assert message.body == (
        '{"type":"alert.opened","timestamp":"2026-03-01T12:00:00+00:00",'
        '"data":{"alert_id":7,"account":{"external_id":"ACME-7","name":"Acme 7"},"severity":"high"}}'
    )
    from webhooks.services import sign_headers

    now = dt.datetime.now(dt.UTC)
    headers = sign_headers(secrets=receiver.secrets, webhook_id=message.webhook_id, body=message.body, at=now)
    assert Webhook(receiver.secrets[0]).verify(message.body, headers)["data"]["alert_id"] == 7
