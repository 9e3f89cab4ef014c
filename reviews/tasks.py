from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=100,
    time_limit=120,
)
def notify_action_owner(action_id: int, by_id: int | None) -> dict:
    """Email (and Slack) the owner of a review action item that was just given to them."""
    from reviews.notifications import notify_action_owner as notify

    return notify(action_id=action_id, by_id=by_id)
