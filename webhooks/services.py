"""Writes: endpoints and their secrets, the outbox (messages and deliveries), and the sender.

The outbox: ``messages_record`` runs in the transaction of the change that emitted the
event (revops.events → webhooks.receivers), so a delivery exists exactly when the change
committed. It takes the subscribed endpoints' rows FOR UPDATE (in id order, so two emitters
cannot deadlock) and numbers each endpoint's deliveries from ``next_sequence``: with the
row locked until commit, sequence order is commit order.

The sender (``endpoint_deliver``) holds a session advisory lock per endpoint, so one
worker at a time sends an endpoint's deliveries, strictly in sequence: while the head
delivery waits for a retry, the ones behind it wait too (head of line), and a receiver that
comes back gets them in order. A delivered one is never sent again except by an explicit
replay (same ``webhook-id``, logged as a replay); a head whose retries are used up is
marked failed and releases the queue behind it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Q
from standardwebhooks import Webhook

from revops import clock
from revops.errors import ApplicationError
from revops.events import EVENT_TYPES, DomainEvent
from revops.queue import SEND_OPTIONS
from webhooks.crypto import decrypt, encrypt, new_secret
from webhooks.models import Attempt, AttemptKind, Delivery, DeliveryState, Endpoint, Message

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_endpoint"
REPLAY_TASK = "webhooks.tasks.replay_attempt"
TEST_EVENT_TYPE = "webhook.test"

# After the n-th failed attempt, the next one waits RETRY_DELAYS[n - 1] (the Standard
# Webhooks suggestion): attempts at 0 s, 5 s, 5 min 5 s, 35 min 5 s, 2 h 35 min, 7 h 35 min,
# 17 h 35 min and 27 h 35 min after the first; a delivery failing all 8 is failed.
RETRY_DELAYS: tuple[dt.timedelta, ...] = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A message older than its whole schedule when it reaches the head (it queued behind a
# failing one) gets one attempt, not a fresh day of retries: a dead receiver's backlog drains.
RETRY_WINDOW = sum(RETRY_DELAYS, dt.timedelta())
# Deliveries failed in a row before the endpoint is shown as failing.
FAILING_AFTER = 3
REQUEST_TIMEOUT_S = 15.0
RESPONSE_BODY_MAX = 2048
ERROR_MAX = 500
# Deliveries one task run sends before handing over to a fresh task (other endpoints' turn).
DELIVER_BUDGET = 200
ROTATION_GRACE = dt.timedelta(hours=24)
ROTATION_GRACE_MAX = dt.timedelta(days=7)
# pg_try_advisory_lock(bigint): this namespace in the high 32 bits, the endpoint id below.
LOCK_NAMESPACE = 0x77686B73  # "whks"


# --- Endpoints ---------------------------------------------------------------------------


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def check_destination(url: str) -> None:
    """Refuse a URL that is not http(s), carries credentials, or (unless
    WEBHOOKS_ALLOW_PRIVATE) points at a private, loopback or link-local address: a webhook
    is a request our server makes, and must not reach into our own network."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ApplicationError("The URL must start with https:// (or http://).", details={"field": "url"})
    if parts.username or parts.password:
        raise ApplicationError(
            "Leave credentials out of the URL: receivers verify the signature instead.", details={"field": "url"}
        )
    if not parts.hostname:
        raise ApplicationError("The URL needs a host name.", details={"field": "url"})
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError):
        raise ApplicationError(f"The host {parts.hostname} cannot be resolved.", details={"field": "url"}) from None
    private = sorted(a for a in addresses if not _is_public(a))
    if private:
        raise ApplicationError(
            f"{parts.hostname} resolves to a private or loopback address ({', '.join(private)}); "
            "webhooks go to public addresses only.",
            details={"field": "url"},
        )


def _check_event_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ApplicationError(f"Unknown event types: {', '.join(unknown)}.", details={"field": "event_types"})
    if not event_types:
        raise ApplicationError("Subscribe to at least one event type.", details={"field": "event_types"})
    return sorted(set(event_types))


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ApplicationError("Give the endpoint a name.", details={"field": "name"})
    return name[:100]


@dataclass(frozen=True)
class NewSecret:
    endpoint: Endpoint
    secret: str


@transaction.atomic
def endpoint_create(
    *, name: str, url: str, event_types: Sequence[str], team=None, created_by=None, enabled: bool = True
) -> NewSecret:
    """A new endpoint and its signing secret (returned once: only its ciphertext is kept)."""
    check_destination(url)
    secret = new_secret()
    endpoint = Endpoint.objects.create(
        name=_check_name(name),
        url=url,
        team=team,
        event_types=_check_event_types(event_types),
        secret=encrypt(secret),
        enabled=enabled,
        created_by=created_by,
    )
    return NewSecret(endpoint=endpoint, secret=secret)


@transaction.atomic
def endpoint_update(
    *, endpoint: Endpoint, name: str, url: str, event_types: Sequence[str], team=None, enabled: bool
) -> Endpoint:
    check_destination(url)
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    resumed = enabled and not endpoint.enabled
    endpoint.name = _check_name(name)
    endpoint.url = url
    endpoint.event_types = _check_event_types(event_types)
    endpoint.team = team
    endpoint.enabled = enabled
    endpoint.save(update_fields=["name", "url", "event_types", "team", "enabled", "updated_at"])
    if resumed:
        # Deliveries queued before it was disabled wait for it; send them now.
        transaction.on_commit(lambda: enqueue_deliveries([endpoint.pk]))
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: Endpoint, grace: dt.timedelta = ROTATION_GRACE) -> NewSecret:
    """A new secret signs from now on; the current one keeps signing beside it for
    ``grace`` (both signatures in ``webhook-signature``), so receivers can switch over."""
    if grace < dt.timedelta() or grace > ROTATION_GRACE_MAX:
        raise ApplicationError(f"The grace period is 0 to {ROTATION_GRACE_MAX.days} days.", details={"field": "grace"})
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = new_secret()
    if grace:
        endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, clock.now() + grace
    else:
        endpoint.previous_secret, endpoint.previous_secret_expires_at = "", None
    endpoint.secret = encrypt(secret)
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return NewSecret(endpoint=endpoint, secret=secret)


def expired_secrets_drop() -> int:
    """Forget previous secrets whose grace period is over (they no longer sign anyway)."""
    return Endpoint.objects.filter(previous_secret_expires_at__lte=clock.now()).update(
        previous_secret="", previous_secret_expires_at=None
    )


def signing_secrets(endpoint: Endpoint) -> list[str]:
    secrets = [decrypt(endpoint.secret)]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > clock.now()
    ):
        secrets.append(decrypt(endpoint.previous_secret))
    return secrets


# --- The outbox --------------------------------------------------------------------------


def message_body(*, event_type: str, data: dict, occurred_at: dt.datetime) -> str:
    """The Standard Webhooks payload shape: ``{"type", "timestamp", "data"}``."""
    return json.dumps(
        {"type": event_type, "timestamp": occurred_at.astimezone(dt.UTC).isoformat(), "data": data},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )


def _new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _queue(*, endpoints: list[Endpoint], targets: list[tuple[Message, list[int]]], now: dt.datetime) -> int:
    """Number and write the deliveries of ``targets`` (message → endpoint ids); the
    endpoints' rows are locked by the caller."""
    by_id = {e.pk: e for e in endpoints}
    taken: dict[int, int] = {}
    deliveries = []
    for message, endpoint_ids in targets:
        for endpoint_id in endpoint_ids:
            offset = taken.get(endpoint_id, 0)
            taken[endpoint_id] = offset + 1
            deliveries.append(
                Delivery(
                    endpoint_id=endpoint_id,
                    message=message,
                    sequence=by_id[endpoint_id].next_sequence + offset,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    Delivery.objects.bulk_create(deliveries, batch_size=1000)
    for endpoint_id, count in taken.items():
        Endpoint.objects.filter(pk=endpoint_id).update(next_sequence=F("next_sequence") + count)
    ids = sorted(taken)
    if ids:
        transaction.on_commit(lambda: enqueue_deliveries(ids))
    return len(deliveries)


def messages_record(*, events: Sequence[DomainEvent]) -> int:
    """Write the messages of ``events`` (one type) and a delivery per subscribed enabled
    endpoint: company endpoints get every event, a team's those whose ``team_ids`` have it.
    Returns the number of deliveries queued; nothing is written when nobody subscribes."""
    if not events:
        return 0
    event_type = events[0].type
    team_ids = set().union(*(e.team_ids for e in events))
    with transaction.atomic():
        endpoints = list(
            Endpoint.objects.select_for_update()
            .filter(enabled=True, event_types__contains=[event_type])
            .filter(Q(team__isnull=True) | Q(team_id__in=team_ids))
            .order_by("id")
            .only("id", "team_id", "next_sequence")
        )
        if not endpoints:
            return 0
        now = clock.now()
        pending = []
        for event in events:
            receivers = [e.pk for e in endpoints if e.team_id is None or e.team_id in event.team_ids]
            if receivers:
                message = Message(
                    webhook_id=_new_webhook_id(),
                    type=event.type,
                    body=message_body(event_type=event.type, data=event.data, occurred_at=event.occurred_at),
                    team_ids=list(event.team_ids),
                    occurred_at=event.occurred_at,
                    created_at=now,
                )
                pending.append((message, receivers))
        Message.objects.bulk_create([m for m, _ in pending], batch_size=1000)
        return _queue(endpoints=endpoints, targets=pending, now=now)


@transaction.atomic
def endpoint_send_test(*, endpoint: Endpoint, requested_by=None) -> Delivery:
    """A ``webhook.test`` message to this endpoint only, queued in its sequence like any other."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    if not endpoint.enabled:
        raise ApplicationError("The endpoint is disabled: enable it to send a test event.")
    now = clock.now()
    data = {"endpoint": endpoint.name, "requested_by": getattr(requested_by, "email", "") or "revops"}
    message = Message.objects.create(
        webhook_id=_new_webhook_id(),
        type=TEST_EVENT_TYPE,
        body=message_body(event_type=TEST_EVENT_TYPE, data=data, occurred_at=now),
        occurred_at=now,
        created_at=now,
    )
    _queue(endpoints=[endpoint], targets=[(message, [endpoint.pk])], now=now)
    return Delivery.objects.get(endpoint=endpoint, message=message)


def enqueue_deliveries(endpoint_ids: Sequence[int]) -> None:
    for endpoint_id in endpoint_ids:
        try:
            current_app.send_task(DELIVER_TASK, args=[endpoint_id], expires=3600, **SEND_OPTIONS)
        except Exception:
            logger.exception("could not send webhook deliveries of endpoint %s; the sweep will", endpoint_id)


# --- Sending -----------------------------------------------------------------------------


@dataclass
class Sent:
    status: int | None
    response_body: str
    duration_ms: int
    error: str
    sent_at: dt.datetime

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def sign_headers(*, secrets: Sequence[str], webhook_id: str, body: str, at: dt.datetime) -> dict[str, str]:
    signatures = " ".join(Webhook(s).sign(webhook_id, at, body) for s in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def _error_text(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return f"timed out after {REQUEST_TIMEOUT_S:g} s"
    if isinstance(exc, requests.ConnectionError):
        reason = str(exc)
        for marker in ("[Errno", "Connection refused", "Name or service not known"):
            if marker in reason:
                reason = reason[reason.index(marker) :].rstrip("')\"")
                break
        return f"could not connect: {reason}"[:ERROR_MAX]
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX]


def _post(endpoint: Endpoint, message: Message) -> Sent:
    # The signature's timestamp is the wall clock when the request leaves: receivers compare
    # it with theirs (standardwebhooks allows 5 minutes), whatever revops.clock says.
    wall = dt.datetime.now(dt.UTC)
    sent_at = clock.now()
    started = time.perf_counter()
    status, text, error = None, "", ""
    try:
        check_destination(endpoint.url)
        headers = sign_headers(
            secrets=signing_secrets(endpoint), webhook_id=message.webhook_id, body=message.body, at=wall
        )
        headers |= {"content-type": "application/json", "user-agent": "revops-webhooks/1"}
        with requests.post(
            endpoint.url,
            data=message.body.encode(),
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
            allow_redirects=False,
            stream=True,
        ) as response:
            status = response.status_code
            raw = response.raw.read(RESPONSE_BODY_MAX, decode_content=True) or b""
            text = raw.decode("utf-8", "replace").replace("\x00", "")
    except ApplicationError as exc:
        error = exc.message
    except requests.RequestException as exc:
        error = _error_text(exc)
    duration_ms = int((time.perf_counter() - started) * 1000)
    if status is not None and not 200 <= status < 300 and not error:
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return Sent(status=status, response_body=text, duration_ms=duration_ms, error=error, sent_at=sent_at)


@dataclass
class DeliverOutcome:
    busy: bool = False
    sent: int = 0
    delivered: int = 0
    # The head waits for a retry until then (None: the queue is empty, or the budget ran out).
    wait_until: dt.datetime | None = None
    more: bool = False


def _lock_key(endpoint_id: int) -> int:
    return (LOCK_NAMESPACE << 32) | (endpoint_id & 0xFFFFFFFF)


def _record(delivery: Delivery, sent: Sent) -> None:
    """The attempt and what it means for the delivery (and, at the ends, the endpoint)."""
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            kind=AttemptKind.SCHEDULED,
            requested_at=sent.sent_at,
            sent_at=sent.sent_at,
            status=sent.status,
            response_body=sent.response_body,
            duration_ms=sent.duration_ms,
            error=sent.error,
        )
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = sent.status, sent.error
        now = clock.now()
        if sent.ok:
            delivery.state, delivery.finished_at = DeliveryState.DELIVERED, now
            # Only touch the endpoint row when there is something to reset (an emitter may hold its lock).
            Endpoint.objects.filter(pk=delivery.endpoint_id).filter(
                Q(consecutive_failures__gt=0) | Q(failing_since__isnull=False)
            ).update(consecutive_failures=0, failing_since=None)
        elif delivery.attempts >= MAX_ATTEMPTS or now >= delivery.message.created_at + RETRY_WINDOW:
            delivery.state, delivery.finished_at = DeliveryState.FAILED, now
            Endpoint.objects.filter(pk=delivery.endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
            Endpoint.objects.filter(
                pk=delivery.endpoint_id, consecutive_failures__gte=FAILING_AFTER, failing_since__isnull=True
            ).update(failing_since=now)
        else:
            delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]
        delivery.save(
            update_fields=["attempts", "last_status", "last_error", "state", "finished_at", "next_attempt_at"]
        )


def endpoint_deliver(*, endpoint_id: int, budget: int = DELIVER_BUDGET) -> DeliverOutcome:
    """Send the endpoint's due deliveries in sequence until one must wait for a retry.

    Runs outside any transaction (each attempt is recorded in its own), under the
    endpoint's advisory lock: a second worker given the same endpoint returns at once.
    """
    outcome = DeliverOutcome()
    key = _lock_key(endpoint_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cursor.fetchone()[0]:
            outcome.busy = True
            return outcome
    try:
        endpoint = Endpoint.objects.filter(pk=endpoint_id, enabled=True).first()
        while endpoint is not None:
            head = (
                Delivery.objects.select_related("message")
                .filter(endpoint_id=endpoint_id, state=DeliveryState.PENDING)
                .order_by("sequence")
                .first()
            )
            if head is None:
                break
            if head.next_attempt_at > clock.now():
                outcome.wait_until = head.next_attempt_at
                break
            if outcome.sent >= budget:
                outcome.more = True
                break
            sent = _post(endpoint, head.message)
            _record(head, sent)
            outcome.sent += 1
            outcome.delivered += int(sent.ok)
            if head.state == DeliveryState.PENDING:
                outcome.wait_until = head.next_attempt_at
                break
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    return outcome


def due_endpoint_ids() -> list[int]:
    """Enabled endpoints whose head delivery is due now (what the sweep sends)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT head.endpoint_id FROM (
                SELECT DISTINCT ON (d.endpoint_id) d.endpoint_id, d.next_attempt_at
                FROM webhooks_delivery d
                WHERE d.state = 'pending'
                ORDER BY d.endpoint_id, d.sequence
            ) head
            JOIN webhooks_endpoint e ON e.id = head.endpoint_id AND e.enabled
            WHERE head.next_attempt_at <= %s
            ORDER BY head.endpoint_id
            """,
            [clock.now()],
        )
        return [row[0] for row in cursor.fetchall()]


# --- Replays -----------------------------------------------------------------------------


@transaction.atomic
def delivery_replay_request(*, delivery: Delivery, requested_by=None) -> Attempt:
    """Send a delivered or failed delivery again, with the same ``webhook-id`` (receivers
    that dedupe on it ignore a copy they have). A pending one is sent in its turn."""
    delivery = Delivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    if delivery.state == DeliveryState.PENDING:
        raise ApplicationError("This delivery is still queued: it is sent in its turn, so there is nothing to replay.")
    if not delivery.endpoint.enabled:
        raise ApplicationError("The endpoint is disabled: enable it to replay a delivery.")
    if delivery.attempt_log.filter(kind=AttemptKind.REPLAY, sent_at__isnull=True).exists():
        raise ApplicationError("A replay of this delivery is already queued.")
    attempt = Attempt.objects.create(
        delivery=delivery, kind=AttemptKind.REPLAY, requested_by=requested_by, requested_at=clock.now()
    )
    transaction.on_commit(lambda: enqueue_replay(attempt.pk))
    return attempt


def enqueue_replay(attempt_id: int) -> None:
    try:
        current_app.send_task(REPLAY_TASK, args=[attempt_id], expires=3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send webhook replay %s; the sweep will", attempt_id)


def attempt_replay_execute(attempt_id: int) -> Attempt | None:
    """Make a queued replay's request; a second call (a redelivered task) finds it claimed."""
    claimed = Attempt.objects.filter(pk=attempt_id, kind=AttemptKind.REPLAY, sent_at__isnull=True).update(
        sent_at=clock.now()
    )
    if not claimed:
        return None
    attempt = Attempt.objects.select_related("delivery__endpoint", "delivery__message").get(pk=attempt_id)
    delivery = attempt.delivery
    sent = _post(delivery.endpoint, delivery.message)
    with transaction.atomic():
        attempt.sent_at, attempt.status, attempt.response_body = sent.sent_at, sent.status, sent.response_body
        attempt.duration_ms, attempt.error = sent.duration_ms, sent.error
        attempt.save(update_fields=["sent_at", "status", "response_body", "duration_ms", "error"])
        if sent.ok:
            # A failed delivery the receiver finally took counts as delivered.
            Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.FAILED).update(
                state=DeliveryState.DELIVERED, last_status=sent.status, last_error="", finished_at=clock.now()
            )
    return attempt


def stale_replay_ids(*, older_than: dt.timedelta = dt.timedelta(minutes=1)) -> list[int]:
    """Replays queued over a minute ago whose task never ran (the broker was away)."""
    return list(
        Attempt.objects.filter(
            kind=AttemptKind.REPLAY, sent_at__isnull=True, requested_at__lte=clock.now() - older_than
        ).values_list("pk", flat=True)
    )
