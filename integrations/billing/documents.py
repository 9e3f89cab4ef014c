"""Stripe objects (as dicts) → ``accounts.BillingDocument`` fields; money in exact Decimals.

The same functions serve the sync and the webhooks, so a document reads the same whichever
way it arrived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from accounts.models import BillingKind, BillingStatus

# Stripe's zero-decimal currencies: amounts are whole units (¥500 is 500, not 5.00).
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
# Three-decimal currencies: Stripe requires the last digit to be 0, so two places hold them.
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905
CENT = Decimal("0.01")


class DocumentSkipped(Exception):
    """Not a document revops records (a draft, a pending refund…); the message says why."""


def money(minor: int, currency: str) -> Decimal:
    """Stripe's integer amount in the currency's minor unit → the exact amount."""
    currency = currency.lower()
    places = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    value = Decimal(int(minor)).scaleb(-places)
    if value != value.quantize(CENT):
        raise DocumentSkipped(f"{minor} {currency.upper()} has more than two decimal places")
    return value.quantize(CENT)


def moment(timestamp: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC) if timestamp else None


def first_day(timestamp: int) -> dt.date:
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC).date()


def last_day(timestamp: int) -> dt.date:
    """A period's end is exclusive (the next period's start): its last day is the second before."""
    return (dt.datetime.fromtimestamp(int(timestamp), dt.UTC) - dt.timedelta(seconds=1)).date()


def ref(value) -> str:
    """An id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


@dataclass(frozen=True)
class Document:
    """One document as revops records it, before its customer is resolved to an account."""

    external_id: str
    customer_id: str
    kind: str
    status: str
    currency: str
    amount: Decimal
    issued_at: dt.datetime
    paid_at: dt.datetime | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    invoice_external_id: str = ""

    def fields(self) -> dict:
        return {
            "kind": self.kind,
            "status": self.status,
            "currency": self.currency,
            "amount": self.amount,
            "issued_at": self.issued_at,
            "paid_at": self.paid_at,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "invoice_external_id": self.invoice_external_id,
        }


INVOICE_STATUSES = {
    "open": BillingStatus.OPEN,
    "paid": BillingStatus.PAID,
    "void": BillingStatus.VOID,
    "uncollectible": BillingStatus.UNCOLLECTIBLE,
}


def invoice_document(invoice: dict) -> Document:
    status = INVOICE_STATUSES.get(invoice.get("status") or "")
    if status is None:
        raise DocumentSkipped(f"status {invoice.get('status') or 'missing'}: not issued yet")
    total = int(invoice.get("total") or 0)
    if total < 0:
        raise DocumentSkipped(f"total {total} is negative (a credit balance, not an invoice revops pays on)")
    lines = (invoice.get("lines") or {}).get("data") or []
    periods = [line["period"] for line in lines if line.get("period")]
    if periods:
        start, end = min(p["start"] for p in periods), max(p["end"] for p in periods)
    else:
        start, end = invoice.get("period_start"), invoice.get("period_end")
    transitions = invoice.get("status_transitions") or {}
    return Document(
        external_id=invoice["id"],
        customer_id=ref(invoice.get("customer")),
        kind=BillingKind.INVOICE,
        status=status,
        currency=(invoice.get("currency") or "usd").lower(),
        amount=money(total, invoice.get("currency") or "usd"),
        issued_at=moment(transitions.get("finalized_at") or invoice.get("created")),
        paid_at=moment(transitions.get("paid_at")) if status == BillingStatus.PAID else None,
        period_start=first_day(start) if start else None,
        period_end=last_day(end) if end and end != start else (first_day(end) if end else None),
    )


def credit_note_document(note: dict) -> Document:
    status = {"issued": BillingStatus.ISSUED, "void": BillingStatus.VOID}.get(note.get("status") or "")
    if status is None:
        raise DocumentSkipped(f"status {note.get('status') or 'missing'} is not issued or void")
    return Document(
        external_id=note["id"],
        customer_id=ref(note.get("customer")),
        kind=BillingKind.CREDIT_NOTE,
        status=status,
        currency=(note.get("currency") or "usd").lower(),
        amount=money(int(note.get("total") or note.get("amount") or 0), note.get("currency") or "usd"),
        issued_at=moment(note.get("created")),
        invoice_external_id=ref(note.get("invoice")),
    )


def refund_document(refund: dict, charge: dict) -> Document:
    """A refund with its charge (the charge names the customer and, when it has one, the invoice)."""
    state = refund.get("status") or ""
    status = {"succeeded": BillingStatus.ISSUED, "failed": BillingStatus.VOID, "canceled": BillingStatus.VOID}.get(
        state
    )
    if status is None:
        raise DocumentSkipped(f"status {state or 'missing'}: not settled yet")
    return Document(
        external_id=refund["id"],
        customer_id=ref(charge.get("customer")),
        kind=BillingKind.REFUND,
        status=status,
        currency=(refund.get("currency") or "usd").lower(),
        amount=money(int(refund.get("amount") or 0), refund.get("currency") or "usd"),
        issued_at=moment(refund.get("created")),
        invoice_external_id=ref(charge.get("invoice")),
    )
