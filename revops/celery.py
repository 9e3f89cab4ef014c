"""The Celery app. Configuration lives in Django settings under the CELERY_ prefix."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.base")
# One BLAS thread per worker process: forecast shards run one per core, and OpenBLAS's own
# threads made each fit 3-4x slower by fighting the other shard (bench.forecast_run).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
