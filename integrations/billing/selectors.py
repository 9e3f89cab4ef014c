"""Reads for the Stripe pages: connections, the matching report, runs, webhooks, documents."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from accounts.models import BillingDocument
from integrations.models import (
    BillingDomain,
    HeldDocument,
    MatchedBy,
    RunState,
    StripeConnection,
    StripeCustomer,
    StripeRun,
    StripeWebhookEvent,
)

RECENT = 25
DOCUMENTS_PAGE = 200


def connection_list() -> QuerySet[StripeConnection]:
    return StripeConnection.objects.all()


def matching_report(*, connection: StripeConnection) -> dict:
    """Customers by how they matched; the unmatched with why and how many documents wait."""
    customers = StripeCustomer.objects.filter(connection=connection).select_related("account")
    held = dict(
        HeldDocument.objects.filter(connection=connection)
        .values("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
    )
    groups: dict[str, list] = {value: [] for value in MatchedBy.values}
    for customer in customers:
        customer.held = held.get(customer.customer_id, 0)
        groups[customer.matched_by].append(customer)
    return {
        "metadata": groups[MatchedBy.METADATA],
        "domain": groups[MatchedBy.DOMAIN],
        "unmatched": groups[MatchedBy.UNMATCHED],
        "held_total": sum(held.values()),
    }


def domains(*, connection: StripeConnection) -> list[BillingDomain]:
    return list(BillingDomain.objects.filter(connection=connection).select_related("account"))


def recent_runs(*, connection: StripeConnection, limit: int = RECENT) -> list[StripeRun]:
    return list(StripeRun.objects.filter(connection=connection).select_related("requested_by")[:limit])


def webhook_log(*, connection: StripeConnection, limit: int = RECENT) -> list[StripeWebhookEvent]:
    return list(StripeWebhookEvent.objects.filter(connection=connection)[:limit])


def documents(*, connection: StripeConnection, account_id: int | None = None, limit: int = DOCUMENTS_PAGE):
    rows = BillingDocument.objects.filter(source=connection.source).select_related("account").order_by("-issued_at")
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    return list(rows[:limit]), rows.count()


def run_is_active(run: StripeRun) -> bool:
    return run.state in (RunState.QUEUED, RunState.RUNNING)
