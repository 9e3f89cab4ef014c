"""Domain events: what happened, said once by the app that knows it, heard by whoever listens.

An app that opens an alert, approves a statement or fails an import calls ``emit`` inside
the transaction that made the change. Listeners (the webhooks app on top) run in that same
transaction, so what they record (a queued delivery) commits or rolls back with the change:
an event is never sent for a change that did not happen, nor lost for one that did.

The core knows the event types and their meaning; it imports no app and sends nothing over
the network itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.dispatch import Signal
from django.utils import timezone

# type → what it means (the webhooks docs and the endpoint form show these words).
EVENT_TYPES: dict[str, str] = {
    "alert.opened": "An alert was opened on an account.",
    "alert.escalated": "An open alert's severity went up.",
    "alert.cleared": "An alert was resolved or its condition cleared.",
    "statement.approved": "Finance approved a commission statement.",
    "statement.paid": "A commission statement was marked paid.",
    "review.finalized": "A monthly review was finalized.",
    "import.failed": "A usage, people or reference import failed.",
    "sync.failed": "A CRM, warehouse or billing sync run failed.",
}


@dataclass(frozen=True)
class DomainEvent:
    type: str
    data: dict
    # The teams the event concerns (an account's owners' teams); empty: company-wide only.
    team_ids: tuple[int, ...] = ()
    occurred_at: dt.datetime = field(default_factory=timezone.now)


# sender: the event type (str); kwarg ``events``: the DomainEvents (one for ``emit``, many
# of the same type for ``emit_many``).
domain_event = Signal()


class UnknownEventType(ValueError):
    pass


def emit(event_type: str, data: dict, *, team_ids: Iterable[int] = (), occurred_at: dt.datetime | None = None) -> None:
    """Tell every listener that ``event_type`` happened; ``data`` must be JSON-serializable."""
    emit_many(event_type, [(data, team_ids)], occurred_at=occurred_at)


def emit_many(
    event_type: str, items: Iterable[tuple[dict, Iterable[int]]], *, occurred_at: dt.datetime | None = None
) -> None:
    """``emit`` for a batch of events of one type (a bulk job's rows): listeners hear them in
    one call and can write them in one statement, in the order given."""
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    at = occurred_at or timezone.now()
    events = [
        DomainEvent(
            type=event_type,
            data=data,
            team_ids=tuple(sorted({int(t) for t in team_ids if t is not None})),
            occurred_at=at,
        )
        for data, team_ids in items
    ]
    if events:
        domain_event.send(sender=event_type, events=events)
