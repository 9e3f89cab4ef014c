from __future__ import annotations

from celery import shared_task

from revops.services import beat_tick_record


@shared_task(acks_late=True, ignore_result=True)
def record_beat_tick() -> None:
    """Scheduled by beat every 30 s: proves beat, broker and a worker all work."""
    beat_tick_record()


@shared_task
def ping(value: str = "pong") -> str:
    """Round-trip check used by the health tests and operators."""
    return value


@shared_task(ignore_result=True)
def forget_old_submissions() -> int:
    """Daily: one-time form tokens past the time anyone could re-submit their form."""
    from revops.idempotency import forget_old_submissions as forget

    return forget()
