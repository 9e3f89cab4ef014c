"""Celery tasks of the BI exports: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=3 * 3600)
def run_export(run_id: int) -> str:
    """Execute a queued export run; a redelivered task finds it claimed and does nothing."""
    from exports.services import run_execute

    run = run_execute(run_id)
    return run.state if run else "claimed elsewhere"


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def schedule_exports() -> int:
    """Queue the daily runs: yesterday, any missed days, and recent days whose data changed."""
    from exports.services import schedule_daily_exports

    return len(schedule_daily_exports())
