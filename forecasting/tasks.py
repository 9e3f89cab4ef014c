from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from revops.clock import yesterday_utc as yesterday


# The soft limit must not exceed the hard one (the app default soft limit is 25 minutes).
@shared_task(acks_late=True, soft_time_limit=50, time_limit=60, expires=6 * 3600)
def run_forecasts_nightly(as_of: str | None = None, shards: int | None = None) -> dict:
    """Fan out one ``run_forecast_shard`` per shard for ``as_of`` (default yesterday, UTC);
    ``FORECAST_SHARDS`` shards unless told (one per worker process, on any host)."""
    day = as_of or yesterday().isoformat()
    shards = shards or settings.FORECAST_SHARDS
    for shard in range(shards):
        run_forecast_shard.apply_async((day, shard, shards), expires=12 * 3600)
    return {"as_of": day, "shards": shards}


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=1800,
    time_limit=1860,
)
def run_forecast_shard(as_of: str, shard: int, shards: int) -> dict:
    """Forecast one shard of accounts. Idempotent: accounts already forecast that day are skipped."""
    from forecasting.services import run_forecasts

    result = run_forecasts(as_of=dt.date.fromisoformat(as_of), shard=shard, shards=shards)
    return {
        "as_of": as_of,
        "shard": shard,
        "accounts": result.accounts,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
    }
