from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import OperationalError

from revops.clock import yesterday_utc as yesterday
from revops.queue import SEND_OPTIONS
from usage.ingestion import rollups
from usage.ingestion.jobs import JobStillRunning, import_job_run, import_jobs_stale
from usage.ingestion.services import retention_apply
from usage.signals.notifications import send_digests
from usage.signals.selectors import meter_trends
from usage.signals.services import refresh_metrics as refresh

logger = logging.getLogger(__name__)


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
    """Fold pending rollup deltas (``rollups.fold_pending``). Safe to run twice."""
    folded = rollups.fold_pending()
    logger.info("folded %s rollup delta rows", folded)
    return folded


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def apply_retention() -> dict:
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
    try:
        job = import_job_run(job_id)
    except JobStillRunning as exc:
        raise self.retry(countdown=exc.retry_in_s) from None
    return job.status if job else None


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def requeue_stale_import_jobs() -> list[int]:
    """Safety net for jobs whose task is gone too: re-send the stale ones (the claim decides)."""
    stale = import_jobs_stale()
    for job_id in stale:
        # No result to wait for, one quick reconnect: never blocks on a broker that went
        # away mid-sweep (the next sweep sends what this one could not).
        run_import_job.apply_async(args=[job_id], **SEND_OPTIONS)
    return stale


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
    day = dt.date.fromisoformat(as_of) if as_of else yesterday()
    result = refresh(as_of=day)
    # The leader's home shows the meters' 30-day trends as of this day: summed here, once,
    # rather than by the first leader to open it.
    meter_trends(as_of=day)
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
    return send_digests(on=yesterday() + dt.timedelta(days=1))


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=100,
    time_limit=120,
)
def notify_alert_assignment(alert_ids: list[int], assignee_id: int, by_id: int | None) -> dict:
    """Email (and Slack) the person alerts were just assigned to."""
    from usage.signals.notifications import notify_assignment

    return notify_assignment(alert_ids=alert_ids, assignee_id=assignee_id, by_id=by_id)
