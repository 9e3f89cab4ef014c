"""Stripe usage into revops: ONE function, ``usage_write``, so the path can be switched.

Today usage goes in as events through the ingestion path (source ``stripe:<connection>``,
dedupe on the event id). Events are append-only and never negative, so each usage
identity (``<meter>:<customer>:<day>`` for meter summaries, ``<price>:<customer>:<line>``
for invoice lines) keeps what was imported in ``StripeUsage``: a re-read that is higher
adds an adjustment event of the difference (``<identity>:v<n>``); one that is lower is
kept as "lowered" (shown on the run) because an event cannot take usage away. A daily
aggregates path with replace semantics would take the value as it is: switching to it
changes only the body of this function.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from integrations.models import StripeConnection, StripeUsage
from usage.enqueue import enqueue_rollup_fold
from usage.ingestion.events import EventIn
from usage.ingestion.ingest import ensure_partitions, resolve_references, store_events


@dataclass(frozen=True)
class UsageRow:
    key: str
    account_id: int
    account_ref: str  # the account's external id (what events name)
    meter_key: str  # the revops meter
    day: dt.date
    value: Decimal


def usage_write(*, connection: StripeConnection, rows: list[UsageRow], now: dt.datetime) -> dict[str, int | str]:
    """Import ``rows`` (in the caller's transaction); the counts of what happened."""
    assert transaction.get_connection().in_atomic_block, "usage_write runs inside the sync's transaction"
    counts: Counter = Counter(read=len(rows))
    known = {u.key: u for u in StripeUsage.objects.filter(connection=connection, key__in=[r.key for r in rows])}
    events, new, changed = [], [], []
    quantity = Decimal(0)
    for row in rows:
        had = known.get(row.key)
        if had is None:
            new.append(
                StripeUsage(
                    connection=connection,
                    key=row.key,
                    account_id=row.account_id,
                    meter_key=row.meter_key,
                    day=row.day,
                    value=row.value,
                )
            )
            if row.value > 0:
                events.append(_event(connection, row, row.key, row.value))
                quantity += row.value
            counts["new"] += 1
        elif row.value > had.value:
            had.version += 1
            events.append(_event(connection, row, f"{row.key}:v{had.version}", row.value - had.value))
            quantity += row.value - had.value
            had.value, had.lowered_to = row.value, None
            changed.append(had)
            counts["adjusted"] += 1
        elif row.value < had.value:
            if had.lowered_to != row.value:
                had.lowered_to = row.value
                changed.append(had)
            counts["lowered"] += 1
        else:
            counts["unchanged"] += 1
    StripeUsage.objects.bulk_create(new, batch_size=2000)
    StripeUsage.objects.bulk_update(changed, ["value", "version", "lowered_to"], batch_size=2000)
    if events:
        resolved = resolve_references(events)
        if resolved.unknown:
            event, reason = resolved.unknown[0]
            from integrations.billing.client import BillingError

            raise BillingError(f"usage {event.event_id}: {reason}; fix the meter mapping and run again.")
        ensure_partitions(event.occurred_at.date() for event in events)
        result = store_events(resolved.rows, received_at=now)
        counts["events"] = result.accepted
        if result.accepted:
            transaction.on_commit(enqueue_rollup_fold)
    counts["quantity"] = format(quantity.normalize(), "f")  # exact, without the column's trailing zeros
    return dict(counts)


def _event(connection: StripeConnection, row: UsageRow, event_id: str, quantity: Decimal) -> EventIn:
    return EventIn(
        source=connection.source,
        event_id=event_id,
        account_ref=row.account_ref,
        meter_ref=row.meter_key,
        occurred_at=dt.datetime(row.day.year, row.day.month, row.day.day, 12, tzinfo=dt.UTC),
        quantity=quantity,
        properties={"stripe": row.key},
    )
