"""Reads: endpoints with their queue, an endpoint's delivery log, a delivery's attempts."""

from __future__ import annotations

from django.db.models import Count, Min, Q, QuerySet

from webhooks.models import Attempt, Delivery, DeliveryState, Endpoint

LOG_PAGE = 100


def endpoint_list() -> QuerySet[Endpoint]:
    return Endpoint.objects.select_related("team").annotate(
        pending=Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__state=DeliveryState.FAILED)),
    )


def endpoint_queue(*, endpoint: Endpoint) -> dict:
    """How many deliveries wait, and when the head is next tried."""
    pending = endpoint.deliveries.filter(state=DeliveryState.PENDING)
    head = pending.order_by("sequence").select_related("message").first()
    counts = endpoint.deliveries.aggregate(
        pending=Count("id", filter=Q(state=DeliveryState.PENDING)),
        delivered=Count("id", filter=Q(state=DeliveryState.DELIVERED)),
        failed=Count("id", filter=Q(state=DeliveryState.FAILED)),
        oldest=Min("created_at", filter=Q(state=DeliveryState.PENDING)),
    )
    return {"head": head, **counts}


def delivery_log(*, endpoint: Endpoint, state: str = "") -> tuple[list[Delivery], int]:
    """The newest deliveries (up to LOG_PAGE) and how many match."""
    deliveries = endpoint.deliveries.select_related("message")
    if state:
        deliveries = deliveries.filter(state=state)
    return list(deliveries.order_by("-sequence")[:LOG_PAGE]), deliveries.count()


def delivery_attempts(*, delivery: Delivery) -> list[Attempt]:
    return list(delivery.attempt_log.select_related("requested_by").order_by("id"))
