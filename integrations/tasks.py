"""Celery tasks of the CRM connections: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def run_sync(run_id: int) -> str:
    """Execute a queued run; a redelivered task finds it claimed and does nothing."""
    from integrations.services import run_execute

    run = run_execute(run_id)
    return run.state if run else "claimed elsewhere"


@shared_task(acks_late=True, soft_time_limit=270, time_limit=300)
def schedule_reads() -> int:
    """Queue the read runs that are due; fail runs whose worker died."""
    from integrations.services import fail_stuck_runs, schedule_due_runs

    fail_stuck_runs()
    return len(schedule_due_runs())


@shared_task(acks_late=True, soft_time_limit=270, time_limit=300)
def schedule_writebacks() -> int:
    from integrations.services import schedule_writebacks as queue_writebacks

    return len(queue_writebacks())


# --- Stripe (integrations.billing) ----------------------------------------------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def run_stripe_sync(run_id: int) -> str:
    """Execute a queued Stripe run; a redelivered task finds it claimed and does nothing."""
    from integrations.billing.services import run_execute

    run = run_execute(run_id)
    return run.state if run else "claimed elsewhere"


@shared_task(acks_late=True, soft_time_limit=270, time_limit=300)
def schedule_stripe_syncs() -> int:
    """Queue the Stripe syncs that are due; resend lost ones; fail runs whose worker died."""
    from integrations.billing.services import schedule_due_runs

    return len(schedule_due_runs())


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=3600)
def run_warehouse_pull(pull_id: int) -> str:
    """Execute a queued warehouse pull; a redelivered task finds it claimed and does nothing."""
    from integrations.warehouse.services import pull_execute

    run = pull_execute(pull_id)
    return run.state if run else "claimed elsewhere"


@shared_task(acks_late=True, soft_time_limit=270, time_limit=300)
def schedule_warehouse_pulls() -> int:
    """Queue the warehouse pulls that are due (each source's schedule_minutes)."""
    from integrations.warehouse.services import schedule_due_pulls

    return len(schedule_due_pulls())
