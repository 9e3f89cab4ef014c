"""Celery tasks of the webhooks: they take ids and call a service; all are safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

# A retry due this soon is waited for by a countdown; later ones are sent by the sweep
# (a long countdown would sit in Redis past the broker's visibility timeout).
COUNTDOWN_MAX_S = 60.0


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def deliver_endpoint(endpoint_id: int) -> str:
    """Send an endpoint's due deliveries in order; a second task for it finds it locked."""
    from revops import clock
    from webhooks.services import endpoint_deliver

    outcome = endpoint_deliver(endpoint_id=endpoint_id)
    if outcome.busy:
        return "busy"
    if outcome.more:
        deliver_endpoint.apply_async(args=[endpoint_id], expires=3600, ignore_result=True)
    elif outcome.wait_until is not None:
        wait = (outcome.wait_until - clock.now()).total_seconds()
        if wait <= COUNTDOWN_MAX_S:
            deliver_endpoint.apply_async(args=[endpoint_id], countdown=max(wait, 0.0), expires=3600, ignore_result=True)
    return f"sent {outcome.sent}, delivered {outcome.delivered}"


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=100,
    time_limit=120,
)
def replay_attempt(attempt_id: int) -> str:
    from webhooks.services import attempt_replay_execute

    attempt = attempt_replay_execute(attempt_id)
    return "claimed elsewhere" if attempt is None else f"status {attempt.status or attempt.error}"


@shared_task(acks_late=True, soft_time_limit=100, time_limit=120)
def send_due() -> int:
    """The sweep: endpoints whose head is due (retries, sends lost while the broker was
    away), replays never sent, and previous secrets past their grace period."""
    from webhooks.services import (
        due_endpoint_ids,
        enqueue_deliveries,
        enqueue_replay,
        expired_secrets_drop,
        stale_replay_ids,
    )

    expired_secrets_drop()
    due = due_endpoint_ids()
    enqueue_deliveries(due)
    for attempt_id in stale_replay_ids():
        enqueue_replay(attempt_id)
    return len(due)
