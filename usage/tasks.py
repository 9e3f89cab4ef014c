from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError

from revops.clock import today_utc
from usage import rollups

logger = logging.getLogger(__name__)

FOLD_SCHEDULED_KEY = "usage:rollup-fold-scheduled"
# Batches arriving within this window share one fold.
FOLD_DEBOUNCE_S = 2


def schedule_rollup_fold() -> None:
    """Enqueue one fold for a burst of ingests (called on commit of each ingest)."""
    try:
        if cache.add(FOLD_SCHEDULED_KEY, 1, timeout=FOLD_DEBOUNCE_S):
            fold_rollups.apply_async(countdown=FOLD_DEBOUNCE_S / 2, expires=600)
    except Exception:
        logger.exception("could not enqueue the rollup fold; the scheduled fold will pick the deltas up")


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
    soft_time_limit=300,
    time_limit=360,
)
def fold_rollups() -> int:
    """Fold pending rollup deltas; loops while more keep arriving. Safe to run twice."""
    folded = 0
    for _ in range(50):  # bounded: the beat safety net picks up anything left
        result = rollups.fold_deltas()
        if result.skipped_locked:
            # Another fold holds the lock and may have claimed before our rows arrived: look again soon.
            fold_rollups.apply_async(countdown=FOLD_DEBOUNCE_S, expires=600)
            break
        folded += result.folded_deltas
        if result.folded_deltas < rollups.BATCH_ROWS and not rollups.pending_delta_count():
            break
    logger.info("folded %s rollup delta rows", folded)
    if folded:
        # Late or new usage changed rollups: the metrics pages should not wait for the night.
        schedule_metrics_refresh()
    return folded


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def apply_retention() -> dict:
    from usage.services import retention_apply

    result = retention_apply()
    return {"cutoff": result.cutoff.isoformat(), "dropped": result.dropped_partitions, "keys": result.deleted_keys}


@shared_task(
    bind=True, acks_late=True, soft_time_limit=3 * 3600 - 60, time_limit=3 * 3600, expires=24 * 3600, max_retries=None
)
def run_import_job(self, job_id: int) -> str | None:
    """Imports can be large (10 M rows): a long limit; the claim makes a redelivery harmless.

    A task redelivered after its worker died finds the job still "running": it looks again
    once the dead worker's heartbeat is stale, then runs the job itself.
    """
    from usage.jobs import JobStillRunning, import_job_run

    try:
        job = import_job_run(job_id)
    except JobStillRunning as exc:
        raise self.retry(countdown=exc.retry_in_s) from None
    return job.status if job else None


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def requeue_stale_import_jobs() -> list[int]:
    """Safety net for jobs whose task is gone too: re-send the stale ones (the claim decides)."""
    from usage.jobs import import_jobs_stale

    stale = import_jobs_stale()
    for job_id in stale:
        run_import_job.delay(job_id)
    return stale


METRICS_SCHEDULED_KEY = "usage:metrics-refresh-scheduled"


def yesterday() -> dt.date:
    """The last complete UTC day: what the nightly job refreshes (the only clock read)."""
    return today_utc() - dt.timedelta(days=1)


def schedule_metrics_refresh() -> None:
    """Enqueue one metrics refresh for a burst of rollup changes."""
    try:
        if cache.add(METRICS_SCHEDULED_KEY, 1, timeout=max(settings.METRICS_REFRESH_DELAY_S, 1)):
            # Rollup changes until it runs share this refresh (5,000 accounts take seconds).
            delay = settings.METRICS_REFRESH_DELAY_S
            refresh_metrics.apply_async(countdown=delay, expires=delay + 900)
    except Exception:
        logger.exception("could not enqueue the metrics refresh; the nightly run will catch up")


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=900,
    time_limit=960,
    expires=6 * 3600,
)
def refresh_metrics(as_of: str | None = None) -> dict:
    """Metrics snapshot + alerts as of ``as_of`` (ISO date; default yesterday). Idempotent."""
    from usage.services import refresh_metrics as refresh

    day = dt.date.fromisoformat(as_of) if as_of else yesterday()
    result = refresh(as_of=day)
    return {
        "as_of": day.isoformat(),
        "accounts": result.accounts,
        "opened": result.alerts_opened,
        "cleared": result.alerts_cleared,
        "seconds": round(result.seconds, 3),
    }


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=540,
    time_limit=600,
)
def send_alert_digests() -> dict:
    """The daily digest: one email per CSM with open alerts, one Slack post per team with a webhook."""
    from usage.notifications import send_digests

    return send_digests(on=yesterday() + dt.timedelta(days=1))
