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
