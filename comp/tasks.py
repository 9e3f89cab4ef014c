from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, time_limit=1800)
def run_comp_monthly(period: str | None = None) -> dict:
    """The month that just ended (default), as of its last day. Idempotent (ledger diff + lock)."""
    from comp.engine import run_comp
    from comp.periods import add_months, parse_period

    month = parse_period(period) if period else add_months(timezone.now().astimezone(dt.UTC).date().replace(day=1), -1)
    result = run_comp(period=month)
    return {"period": f"{month:%Y-%m}", "lines_added": result.lines_added, "skipped": result.skipped}


@shared_task(acks_late=True, soft_time_limit=15 * 60, time_limit=16 * 60, expires=6 * 3600)
def run_whatif(run_id: int) -> str | None:
    """Replay a queued what-if (``comp.whatif``). The claim makes a second delivery a no-op;
    a failure is stored on the run with its reason, so there is nothing to retry."""
    from comp.whatif import whatif_execute

    run = whatif_execute(run_id=run_id)
    return run.status if run else None
