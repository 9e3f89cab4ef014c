from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError

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
    return folded


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def apply_retention() -> dict:
    from usage.services import retention_apply

    result = retention_apply()
    return {"cutoff": result.cutoff.isoformat(), "dropped": result.dropped_partitions, "keys": result.deleted_keys}


@shared_task(acks_late=True, soft_time_limit=3 * 3600 - 60, time_limit=3 * 3600, expires=24 * 3600)
def run_import_job(job_id: int) -> str | None:
    """Imports can be large (10 M rows): a long limit; the claim makes a redelivery harmless."""
    from usage.jobs import import_job_run

    job = import_job_run(job_id)
    return job.status if job else None
