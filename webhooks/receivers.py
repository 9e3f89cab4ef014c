"""Domain events (revops.events) → one queued delivery per subscribed endpoint."""

from __future__ import annotations

from django.dispatch import receiver

from revops.events import domain_event


@receiver(domain_event, dispatch_uid="webhooks.record")
def record(sender, events, **kwargs) -> None:
    # In the emitter's transaction: the deliveries commit (or roll back) with the change.
    from webhooks.services import messages_record

    messages_record(events=events)
