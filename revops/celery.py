"""The Celery app. Configuration lives in Django settings under the CELERY_ prefix."""

from __future__ import annotations

import functools
import os

from celery import Celery
from kombu import Connection

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.base")
# One BLAS thread per worker process: forecast shards run one per core, and OpenBLAS's own
# threads made each fit 3-4x slower by fighting the other shard (bench.forecast_run).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _collected_connections_forget_their_default_channel() -> None:
    """A worker must survive its broker going away while it holds unacknowledged messages.

    On a lost connection Celery (5.7) calls ``connection.collect()`` and then
    ``connection.close()``. kombu's ``collect`` fails to close the default channel (the
    broker is gone), drops the transport, but keeps the channel; ``close`` then closes
    that channel again, whose restore of unacknowledged messages (any task with a
    countdown, the one running) needs the dropped transport: an ``AttributeError`` that is
    not a connection error, so the worker stopped with "Unrecoverable error" instead of
    reconnecting. Once collected, the connection has no channel to close: the
    unacknowledged messages stay in the broker's unacked set and come back after the
    visibility timeout, as after a SIGKILL (tests/usage/test_faults.py).
    """
    collect = Connection.collect
    if getattr(collect, "forgets_default_channel", False):
        return

    @functools.wraps(collect)
    def collect_and_forget(self, *args, **kwargs):
        try:
            return collect(self, *args, **kwargs)
        finally:
            self._default_channel = None

    collect_and_forget.forgets_default_channel = True
    Connection.collect = collect_and_forget


_collected_connections_forget_their_default_channel()

app = Celery("revops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    result_expires=60 * 60 * 24,
    # Tasks are written to be idempotent, so a task lost with its worker is redelivered
    # rather than dropped.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
    enable_utc=True,
)
app.autodiscover_tasks()


def _load_schedule() -> None:
    from revops.schedules import BEAT_SCHEDULE

    app.conf.beat_schedule = BEAT_SCHEDULE


app.on_after_configure.connect(lambda sender, **kwargs: _load_schedule(), weak=False)
