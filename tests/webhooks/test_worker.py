"""With a real Celery worker: the commit sends the deliveries, a short outage is retried
by the worker itself (the 5 s retry), and everything arrives once, in order."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from revops.events import emit
from webhooks.models import Attempt, Delivery, DeliveryState
from webhooks.services import endpoint_create

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait(condition, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_worker_delivers_after_a_short_outage_once_and_in_order(celery_worker, celery_redis_url, receiver):
    created = endpoint_create(name="Ops", url=receiver.url, event_types=["import.failed"])
    receiver.secrets.append(created.secret)
    worker = celery_worker(celery_redis_url)
    receiver.stop()
    with transaction.atomic():
        for n in (1, 2, 3):
            emit("import.failed", {"import_job_id": n})
    # The first attempt (sent on commit) is refused; the worker retries 5 s later by itself.
    assert _wait(lambda: Attempt.objects.filter(status__isnull=True).exists()), worker.log()
    receiver.start()
    assert _wait(lambda: Delivery.objects.filter(state=DeliveryState.DELIVERED).count() == 3), worker.log()
    assert [r.data["import_job_id"] for r in receiver.got] == [1, 2, 3]
    head = Delivery.objects.get(sequence=1)
    assert head.attempts == 2 and "could not connect" in head.attempt_log.order_by("id").first().error
    assert receiver.refused == []
