"""Putting usage's background work on the queue: the only way services reach Celery.

Services, ingestion and import jobs call these helpers (on commit); tasks never import
this module, and it imports no other usage module: each task is sent **by name**, so the
arrows run one way, services → enqueue → broker → worker → ``usage.tasks`` → services.
Tasks go through ``current_app`` (the project's Celery app, or a test's client app).

The two debounced helpers let a burst of writes share one run: a cache key held for the
debounce window says a run is already on its way.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.core.cache import cache

from revops.queue import SEND_OPTIONS

logger = logging.getLogger(__name__)

FOLD_TASK = "usage.tasks.fold_rollups"
REFRESH_TASK = "usage.tasks.refresh_metrics"
IMPORT_TASK = "usage.tasks.run_import_job"

# How tasks are sent (nobody reads their results; never hold up a request): revops.queue.
FOLD_SCHEDULED_KEY = "usage:rollup-fold-scheduled"
# Batches arriving within this window share one fold.
FOLD_DEBOUNCE_S = 2
METRICS_SCHEDULED_KEY = "usage:metrics-refresh-scheduled"


def enqueue_rollup_fold(*, countdown: float = FOLD_DEBOUNCE_S / 2, debounce: bool = True) -> None:
    """One fold for a burst of ingests (called on commit of each ingest).

    ``debounce=False`` sends one regardless: a fold that found the lock taken looks again.
    """
    try:
        if not debounce or cache.add(FOLD_SCHEDULED_KEY, 1, timeout=FOLD_DEBOUNCE_S):
            current_app.send_task(FOLD_TASK, countdown=countdown, expires=600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not enqueue the rollup fold; the scheduled fold will pick the deltas up")


def enqueue_metrics_refresh() -> None:
    """One metrics refresh for a burst of rollup changes (5,000 accounts take seconds)."""
    try:
        delay = settings.METRICS_REFRESH_DELAY_S
        if cache.add(METRICS_SCHEDULED_KEY, 1, timeout=max(delay, 1)):
            current_app.send_task(REFRESH_TASK, countdown=delay, expires=delay + 900, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not enqueue the metrics refresh; the nightly run will catch up")


def enqueue_import_job(job_id: int) -> None:
    """Run an uploaded file's import job in the worker. If the broker is away the job row
    stays queued and the minute sweep (``requeue_stale_import_jobs``) sends it later."""
    try:
        current_app.send_task(IMPORT_TASK, args=[job_id], expires=24 * 3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send import job %s; the sweep will send it once the broker answers", job_id)


NOTIFY_ASSIGNMENT_TASK = "usage.tasks.notify_alert_assignment"


def enqueue_assignment_notice(*, alert_ids: list[int], assignee_id: int, by_id: int | None) -> None:
    """Tell the person alerts were assigned to (email, and their team's Slack)."""
    try:
        current_app.send_task(
            NOTIFY_ASSIGNMENT_TASK, args=[alert_ids, assignee_id, by_id], expires=24 * 3600, **SEND_OPTIONS
        )
    except Exception:
        logger.exception("could not send the assignment notice for alerts %s", alert_ids)
