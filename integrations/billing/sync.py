"""One Stripe sync: read everything first (outside any transaction), then apply it in one.

A run that fails while reading (Stripe down after the client's retries, a refused key)
has written nothing; the apply step is a single transaction, so a run is never half
applied. Incremental runs read documents created since the cursors less a look-back
window (an invoice created last week may be paid today); the webhooks bring status
changes at once, the look-back catches the ones a webhook missed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, BillingDocument
from integrations.billing.client import Stripe
from integrations.billing.documents import (
    Document,
    DocumentSkipped,
    credit_note_document,
    first_day,
    invoice_document,
    refund_document,
)
from integrations.billing.matching import Match, match_customer
from integrations.billing.usage import UsageRow, usage_write
from integrations.models import (
    BillingDomain,
    HeldDocument,
    MatchedBy,
    StripeConnection,
    StripeCustomer,
    UsageMode,
)

LOOKBACK = dt.timedelta(days=45)
# Meter summaries for the last days are read again: Stripe accepts events up to 35 days
# late, but nearly all arrive within hours; the days before this are final enough.
RESTATE_DAYS = 3
DAY = dt.timedelta(days=1)
KINDS = ("invoice", "credit_note", "refund")
DOCUMENT_FIELDS = (
    "kind",
    "status",
    "currency",
    "amount",
    "issued_at",
    "paid_at",
    "period_start",
    "period_end",
    "invoice_external_id",
)


@dataclass
class Batch:
    customers: list[dict] = field(default_factory=list)
    matches: dict[str, Match] = field(default_factory=dict)
    usage: list[tuple[str, str, dt.date, Decimal]] = field(default_factory=list)  # (key, customer, day, value)
    usage_meter: dict[str, str] = field(default_factory=dict)  # usage key → revops meter
    usage_through: dict[str, dt.date] = field(default_factory=dict)
    documents: list[tuple[str, dict, dict | None]] = field(default_factory=list)  # (kind, object, charge)
    cursors: dict[str, int] = field(default_factory=dict)


def _ts(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def read(connection: StripeConnection, stripe: Stripe, *, full: bool, today: dt.date, progress=None) -> Batch:
    batch = Batch(cursors=dict(connection.cursors))
    say = progress or (lambda stage: None)
    v1 = stripe.v1

    say("reading customers")
    batch.customers = [c.to_dict() for c in stripe.each(v1.customers.list, {}, "listing customers")]
    accounts = dict(Account.objects.values_list("external_id", "pk"))
    domains = dict(BillingDomain.objects.filter(connection=connection).values_list("domain", "account_id"))
    for customer in batch.customers:
        batch.matches[customer["id"]] = match_customer(
            customer,
            metadata_key=connection.metadata_key,
            accounts=accounts,
            domains=domains,
            use_domain=connection.match_email_domain,
        )

    def since(kind: str) -> dict:
        cursor = connection.cursors.get(kind)
        if full or not cursor:
            return {}
        return {"created": {"gte": int(cursor - LOOKBACK.total_seconds())}}

    say("reading invoices")
    for invoice in stripe.each(v1.invoices.list, since("invoice"), "listing invoices"):
        batch.documents.append(("invoice", _with_every_line(stripe, invoice.to_dict()), None))
    say("reading credit notes")
    for note in stripe.each(v1.credit_notes.list, since("credit_note"), "listing credit notes"):
        batch.documents.append(("credit_note", note.to_dict(), None))
    say("reading refunds")
    params = {**since("refund"), "expand": ["data.charge"]}
    for refund in stripe.each(v1.refunds.list, params, "listing refunds"):
        data = refund.to_dict()
        charge = data.get("charge") if isinstance(data.get("charge"), dict) else {}
        batch.documents.append(("refund", data, stripe.with_invoice(charge)))
    for kind, obj, _ in batch.documents:
        batch.cursors[kind] = max(batch.cursors.get(kind, 0), int(obj.get("created") or 0))

    if connection.usage_mode == UsageMode.METER_SUMMARIES:
        _read_summaries(connection, stripe, batch, today=today, say=say)
    else:
        _usage_from_lines(connection, batch)
    return batch


def _with_every_line(stripe: Stripe, invoice: dict) -> dict:
    """An invoice embeds only its first lines (``lines.has_more``): read the rest from its
    lines list, so invoice-line usage and the document's period see every line."""
    lines = invoice.get("lines") or {}
    if not lines.get("has_more") or not lines.get("data"):
        return invoice
    rest = stripe.each(
        lambda p, i=invoice["id"]: stripe.v1.invoices.line_items.list(i, p),
        {"starting_after": lines["data"][-1]["id"]},
        f"reading the lines of invoice {invoice['id']}",
    )
    every = [*lines["data"], *(line.to_dict() for line in rest)]
    return {**invoice, "lines": {**lines, "data": every, "has_more": False}}


def _read_summaries(connection: StripeConnection, stripe: Stripe, batch: Batch, *, today: dt.date, say) -> None:
    known = dict(StripeCustomer.objects.filter(connection=connection).values_list("customer_id", "usage_through"))
    end = today + DAY  # today's partial day too: a later read adds what came since
    matched = [cid for cid, m in batch.matches.items() if m.account_id is not None]
    say(f"reading usage of {len(matched)} matched customers")
    for customer_id in matched:
        through = known.get(customer_id)
        start = max(connection.usage_start, through - RESTATE_DAYS * DAY) if through else connection.usage_start
        if start >= end:
            continue
        for meter_id, meter_key in sorted(connection.meter_map.items()):
            params = {
                "customer": customer_id,
                "start_time": _ts(start),
                "end_time": _ts(end),
                "value_grouping_window": "day",
            }
            summaries = stripe.each(
                lambda p, m=meter_id: stripe.v1.billing.meters.event_summaries.list(m, p),
                params,
                f"reading meter {meter_id} for {customer_id}",
            )
            for summary in summaries:
                day = first_day(summary.start_time)
                key = f"{meter_id}:{customer_id}:{day:%Y-%m-%d}"
                batch.usage.append((key, customer_id, day, Decimal(str(summary.aggregated_value))))
                batch.usage_meter[key] = meter_key
        batch.usage_through[customer_id] = end


def _usage_from_lines(connection: StripeConnection, batch: Batch) -> None:
    """Invoice-lines mode: each line of a mapped price is usage on its period's first day."""
    for kind, invoice, _ in batch.documents:
        if kind != "invoice" or invoice.get("status") in ("draft", "void"):
            continue
        customer_id = invoice.get("customer") or ""
        for line in (invoice.get("lines") or {}).get("data") or []:
            price = ((line.get("pricing") or {}).get("price_details") or {}).get("price") or ""
            quantity = line.get("quantity_decimal") or line.get("quantity")
            if price not in connection.meter_map or quantity is None:
                continue
            day = first_day((line.get("period") or {}).get("start") or invoice["created"])
            if day < connection.usage_start:
                continue
            key = f"{price}:{customer_id}:{line['id']}"
            batch.usage.append((key, customer_id, day, Decimal(str(quantity))))
            batch.usage_meter[key] = connection.meter_map[price]


def _document(kind: str, obj: dict, charge: dict | None) -> Document:
    if kind == "invoice":
        return invoice_document(obj)
    if kind == "credit_note":
        return credit_note_document(obj)
    return refund_document(obj, charge or {})


def apply(connection: StripeConnection, batch: Batch, *, now: dt.datetime) -> dict:
    """Write the batch (one transaction); the run's counts."""
    counts: dict[str, Counter] = defaultdict(Counter)
    with transaction.atomic():
        links = _save_customers(connection, batch, now=now, counts=counts["customers"])
        account_ref = dict(Account.objects.filter(pk__in=set(links.values())).values_list("pk", "external_id"))

        rows = []
        for key, customer_id, day, value in batch.usage:
            account_id = links[customer_id]
            rows.append(UsageRow(key, account_id, account_ref[account_id], batch.usage_meter[key], day, value))
        counts["usage"].update(usage_write(connection=connection, rows=rows, now=now))
        for customer_id, through in batch.usage_through.items():
            StripeCustomer.objects.filter(connection=connection, customer_id=customer_id).update(usage_through=through)

        # Documents held for customers who are matched now go in with this run's.
        held = list(HeldDocument.objects.filter(connection=connection, customer_id__in=list(links)))
        read_ids = {obj["id"] for _, obj, _ in batch.documents}
        entries = [
            (h.kind, h.payload["object"], h.payload.get("charge")) for h in held if h.external_id not in read_ids
        ]
        entries += batch.documents
        documents_apply(connection=connection, entries=entries, links=links, counts=counts)
        HeldDocument.objects.filter(pk__in=[h.pk for h in held]).delete()
        if held:
            counts["held_released"]["documents"] = len(held)
        StripeConnection.objects.filter(pk=connection.pk).update(cursors=batch.cursors, last_sync_at=now)
    return {name: dict(c) for name, c in counts.items() if c}


def _save_customers(connection: StripeConnection, batch: Batch, *, now: dt.datetime, counts: Counter) -> dict:
    existing = {c.customer_id: c for c in StripeCustomer.objects.filter(connection=connection)}
    new, changed = [], []
    for customer in batch.customers:
        match = batch.matches[customer["id"]]
        values = {
            "name": (customer.get("name") or "")[:200],
            "email": (customer.get("email") or "")[:254],
            "account_id": match.account_id,
            "matched_by": match.matched_by,
            "reason": match.reason[:300],
            "seen_at": now,
        }
        counts["read"] += 1
        counts[match.matched_by] += 1
        row = existing.get(customer["id"])
        if row is None:
            new.append(StripeCustomer(connection=connection, customer_id=customer["id"], **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
            changed.append(row)
    StripeCustomer.objects.bulk_create(new, batch_size=2000)
    StripeCustomer.objects.bulk_update(
        changed, ["name", "email", "account_id", "matched_by", "reason", "seen_at"], batch_size=2000
    )
    return dict(
        StripeCustomer.objects.filter(connection=connection, account__isnull=False)
        .exclude(matched_by=MatchedBy.UNMATCHED)
        .values_list("customer_id", "account_id")
    )


def documents_apply(
    *, connection: StripeConnection, entries: list[tuple[str, dict, dict | None]], links: dict, counts: dict
) -> list[str]:
    """Upsert documents by (source, external id); those of unmatched customers are held.

    ``entries``: (kind, Stripe object, charge for a refund). Returns each entry's outcome.
    """
    source = connection.source
    docs: list[tuple[str, Document | None, str, tuple]] = []
    for entry in entries:
        kind, obj, charge = entry
        try:
            docs.append((kind, _document(kind, obj, charge), "", entry))
        except DocumentSkipped as skipped:
            docs.append((kind, None, str(skipped), entry))
    ids = [d.external_id for _, d, _, _ in docs if d]
    existing = {b.external_id: b for b in BillingDocument.objects.filter(source=source, external_id__in=ids)}
    invoices = [d.invoice_external_id for _, d, _, _ in docs if d and d.invoice_external_id]
    periods = {
        b.external_id: (b.period_start, b.period_end)
        for b in BillingDocument.objects.filter(source=source, external_id__in=invoices)
    }
    periods |= {d.external_id: (d.period_start, d.period_end) for _, d, _, _ in docs if d and d.kind == "invoice"}
    outcomes = []
    new, changed, held = [], [], []
    for kind, doc, why, (_, obj, charge) in docs:
        c = counts[kind]
        c["read"] += 1
        if doc is None:
            c["skipped"] += 1
            outcomes.append(f"skipped: {why}")
            continue
        account_id = links.get(doc.customer_id)
        if account_id is None:
            c["held"] += 1
            held.append(
                HeldDocument(
                    connection=connection,
                    external_id=doc.external_id,
                    customer_id=doc.customer_id or "(none)",
                    kind=kind,
                    payload={"object": obj, "charge": charge},
                )
            )
            outcomes.append("held")
            continue
        fields = doc.fields()
        if doc.invoice_external_id and doc.invoice_external_id in periods:
            fields["period_start"], fields["period_end"] = periods[doc.invoice_external_id]
        row = existing.get(doc.external_id)
        if row is None:
            new.append(BillingDocument(account_id=account_id, source=source, external_id=doc.external_id, **fields))
            c["created"] += 1
            outcomes.append("created")
        elif row.account_id != account_id or any(getattr(row, k) != v for k, v in fields.items()):
            row.account_id = account_id
            for name, value in fields.items():
                setattr(row, name, value)
            changed.append(row)
            c["updated"] += 1
            outcomes.append("updated")
        else:
            c["unchanged"] += 1
            outcomes.append("unchanged")
    BillingDocument.objects.bulk_create(new, batch_size=2000)
    now = timezone.now()
    for row in changed:
        row.updated_at = now
    BillingDocument.objects.bulk_update(changed, ["account_id", "updated_at", *DOCUMENT_FIELDS], batch_size=2000)
    for h in held:
        HeldDocument.objects.update_or_create(
            connection=connection,
            external_id=h.external_id,
            defaults={"customer_id": h.customer_id, "kind": h.kind, "payload": h.payload},
        )
    return outcomes
