"""Writes: Stripe connections, the domain table, sync runs and webhook events.

A run is a ``StripeRun`` row, queued by a person ("Sync now") or the schedule and executed
by the worker (``integrations.tasks.run_stripe_sync``), which claims it with a conditional
UPDATE so a redelivered task does nothing. A webhook updates the same document rows at
once, through the same conversion functions as the sync.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import Counter, defaultdict

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from integrations.billing import sync
from integrations.billing.client import BillingError, Stripe
from integrations.billing.matching import email_domain
from integrations.crypto import decrypt_json, encrypt_json
from integrations.models import (
    BillingDomain,
    RunState,
    StripeConnection,
    StripeCustomer,
    StripeRun,
    StripeWebhookEvent,
    UsageMode,
    WebhookOutcome,
)
from revops.errors import ApplicationError
from revops.events import emit
from revops.queue import SEND_OPTIONS
from usage.models import Meter

logger = logging.getLogger(__name__)

RUN_TASK = "integrations.tasks.run_stripe_sync"
KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]{4,}$")
WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9_+/=]{4,}$")
METADATA_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{1,100}$")
# Stripe's own tolerance: a signature older than five minutes is a replay, not a delivery.
WEBHOOK_TOLERANCE_S = 300


def stripe_for(connection: StripeConnection, *, page_size: int | None = None) -> Stripe:
    secrets = decrypt_json(connection.credentials)
    if not secrets.get("secret_key"):
        raise BillingError("The connection has no secret key; connect again.")
    kwargs = {"page_size": page_size} if page_size else {}
    return Stripe(secret_key=secrets["secret_key"], api_base=connection.api_base, **kwargs)


def meter_map_check(meter_map: dict) -> dict:
    clean = {}
    known = set(Meter.objects.filter(key__in=list(meter_map.values())).values_list("key", flat=True))
    for stripe_key, meter_key in meter_map.items():
        stripe_key, meter_key = str(stripe_key).strip(), str(meter_key).strip()
        if not STRIPE_ID.match(stripe_key):
            raise ApplicationError(
                f"“{stripe_key[:80]}” is not a Stripe meter or price id (letters, digits and _).",
                details={"field": "meter_map"},
            )
        if meter_key not in known:
            raise ApplicationError(
                f"{stripe_key} maps to “{meter_key[:64]}”, which is not a revops meter key.",
                details={"field": "meter_map"},
            )
        clean[stripe_key] = meter_key
    return clean


def connection_create(
    *,
    name: str,
    secret_key: str,
    webhook_secret: str = "",
    api_base: str = "",
    metadata_key: str = "revops_account",
    match_email_domain: bool = True,
    usage_mode: str = UsageMode.METER_SUMMARIES,
    meter_map: dict | None = None,
    usage_start: dt.date | None = None,
    schedule_minutes: int = 60,
    created_by=None,
) -> StripeConnection:
    """A validated connection: the key is tried with one call before anything is stored."""
    if not name.strip():
        raise ApplicationError("A connection needs a name.", details={"field": "name"})
    secret_key, webhook_secret = secret_key.strip(), webhook_secret.strip()
    if not KEY.match(secret_key):
        raise ApplicationError(
            "The secret key must be a Stripe secret or restricted key (sk_live_…, sk_test_…, rk_…).",
            details={"field": "secret_key"},
        )
    if webhook_secret and not WEBHOOK_SECRET.match(webhook_secret):
        raise ApplicationError(
            "The webhook signing secret starts with whsec_ (the endpoint's page in Stripe shows it).",
            details={"field": "webhook_secret"},
        )
    if api_base and not re.match(r"^https?://[^\s/]+", api_base):
        raise ApplicationError(
            "The API base must start with https:// (or http:// for a local test server); leave it blank for Stripe.",
            details={"field": "api_base"},
        )
    if not METADATA_KEY.match(metadata_key or ""):
        raise ApplicationError("The metadata key is 1–40 letters, digits, _ or -.", details={"field": "metadata_key"})
    if usage_mode not in UsageMode.values:
        raise ApplicationError(f"Unknown usage mode “{usage_mode}”.", details={"field": "usage_mode"})
    meter_map = meter_map_check(meter_map or {})
    probe = Stripe(secret_key=secret_key, api_base=api_base)
    try:
        probe.call(lambda: probe.v1.customers.list(params={"limit": 1}), "trying the key")
    except BillingError as exc:
        raise ApplicationError(exc.message, details={"field": "secret_key"}) from None
    with transaction.atomic():
        return StripeConnection.objects.create(
            name=name.strip(),
            api_base=api_base.rstrip("/"),
            credentials=encrypt_json({"secret_key": secret_key, "webhook_secret": webhook_secret}),
            metadata_key=metadata_key,
            match_email_domain=match_email_domain,
            usage_mode=usage_mode,
            meter_map=meter_map,
            usage_start=usage_start or timezone.now().date() - dt.timedelta(days=30),
            schedule_minutes=schedule_minutes,
            created_by=created_by,
        )


@transaction.atomic
def domain_set(*, connection: StripeConnection, domain: str, account_external_id: str) -> BillingDomain:
    """Customers at ``domain`` (no metadata) are ``account``'s from the next sync on."""
    domain = email_domain(f"x@{domain.strip().lstrip('@')}")
    if not DOMAIN.match(domain):
        raise ApplicationError(f"“{domain[:80]}” is not an email domain (like acme.com).", details={"field": "domain"})
    account = Account.objects.filter(external_id=account_external_id.strip()).first()
    if account is None:
        raise ApplicationError(
            f"No account has the id “{account_external_id.strip()[:100]}”.", details={"field": "account"}
        )
    row, _ = BillingDomain.objects.update_or_create(connection=connection, domain=domain, defaults={"account": account})
    return row


@transaction.atomic
def domain_remove(*, connection: StripeConnection, domain_id: int) -> str | None:
    """Remove one of the connection's domains; the domain removed, or None when it has no such one."""
    found = BillingDomain.objects.filter(connection=connection, pk=domain_id).first()
    if found is None:
        return None
    found.delete()
    return found.domain


# --- runs ------------------------------------------------------------------------------


def run_request(*, connection: StripeConnection, requested_by=None, full: bool = False) -> StripeRun:
    """Queue a run (sent on commit). Asking while one is queued or running returns that one."""
    with transaction.atomic():
        StripeConnection.objects.select_for_update().filter(pk=connection.pk).first()
        pending = StripeRun.objects.filter(connection=connection, state__in=[RunState.QUEUED, RunState.RUNNING]).first()
        if pending is not None:
            return pending
        run = StripeRun.objects.create(connection=connection, full=full, requested_by=requested_by)
        transaction.on_commit(lambda: enqueue_run(run.pk))
    return run


def enqueue_run(run_id: int) -> None:
    try:
        current_app.send_task(RUN_TASK, args=[run_id], expires=6 * 3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send Stripe sync run %s; the scheduler will send it", run_id)


def run_execute(run_id: int, *, today: dt.date | None = None, page_size: int | None = None) -> StripeRun | None:
    """Execute a queued run (None if another worker has it). An error fails it, saying why."""
    claimed = StripeRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now(), stage="starting"
    )
    if not claimed:
        return None
    run = StripeRun.objects.select_related("connection").get(pk=run_id)
    today = today or timezone.now().date()
    counts, error, client = {}, "", None

    def progress(stage: str) -> None:
        StripeRun.objects.filter(pk=run.pk).update(stage=stage[:100])

    try:
        client = stripe_for(run.connection, page_size=page_size)
        batch = sync.read(run.connection, client, full=run.full, today=today, progress=progress)
        progress("applying")
        counts = sync.apply(run.connection, batch, now=timezone.now())
    except ApplicationError as exc:
        error = exc.message
    except Exception as exc:  # a bug must still end the run, saying so, and not leave it "running"
        logger.exception("Stripe run %s failed", run.pk)
        error = f"Unexpected error: {exc.__class__.__name__}: {exc}"
    with transaction.atomic():
        StripeRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED if error else RunState.SUCCEEDED,
            stage="failed" if error else "done",
            error=error,
            counts=counts,
            retries=client.retries if client else 0,
            requests=client.http.attempts if client else 0,
            finished_at=timezone.now(),
        )
        if error:
            emit(
                "sync.failed",
                {
                    "kind": "billing",
                    "source": "stripe",
                    "connection": run.connection.name,
                    "run": run.pk,
                    "error": error,
                },
            )
    return StripeRun.objects.get(pk=run.pk)


def schedule_due_runs(*, now: dt.datetime | None = None) -> list[int]:
    """Queue a run for every connection that is due; resend queued runs whose task never came."""
    now = now or timezone.now()
    queued = []
    for connection in StripeConnection.objects.filter(schedule_minutes__gt=0):
        due = connection.last_sync_at is None or connection.last_sync_at <= now - dt.timedelta(
            minutes=connection.schedule_minutes
        )
        if due:
            queued.append(run_request(connection=connection).pk)
    stale = StripeRun.objects.filter(state=RunState.QUEUED, created_at__lt=now - dt.timedelta(minutes=1))
    for run_id in stale.values_list("pk", flat=True):
        enqueue_run(run_id)
    limit = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    StripeRun.objects.filter(state=RunState.RUNNING, started_at__lt=now - limit).update(
        state=RunState.FAILED, stage="failed", error="The worker running it stopped; run it again.", finished_at=now
    )
    return queued


# --- webhooks --------------------------------------------------------------------------

DOCUMENT_EVENTS = {
    "invoice.finalized": "invoice",
    "invoice.paid": "invoice",
    "invoice.payment_succeeded": "invoice",
    "invoice.voided": "invoice",
    "invoice.marked_uncollectible": "invoice",
    "invoice.updated": "invoice",
    "credit_note.created": "credit_note",
    "credit_note.updated": "credit_note",
    "credit_note.voided": "credit_note",
    "charge.refunded": "charge",
    "refund.created": "refund",
    "refund.updated": "refund",
}


class WebhookRefused(ApplicationError):
    """The delivery is not from Stripe (signature), too old, or not an event: answered 400."""


def webhook_receive(*, connection: StripeConnection, payload: bytes, signature: str) -> StripeWebhookEvent:
    """Verify and apply one delivery. A replay of an event already received changes nothing."""
    secret = decrypt_json(connection.credentials).get("webhook_secret") or ""
    if not secret:
        raise WebhookRefused("This connection has no webhook signing secret; add it on the connection's page.")
    import stripe

    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_S)
    except stripe.SignatureVerificationError as exc:
        reason = str(exc._message or exc)
        if "tolerance" in reason:
            reason = f"the signature's timestamp is more than {WEBHOOK_TOLERANCE_S} s old (a replayed delivery?)"
        raise WebhookRefused(f"Stripe-Signature refused: {reason}") from None
    except ValueError:
        raise WebhookRefused("The body is not a JSON Stripe event.") from None
    data = json.loads(payload)
    event_id, event_type = str(data.get("id") or "")[:100], str(data.get("type") or "")[:100]
    if not event_id or not isinstance((data.get("data") or {}).get("object"), dict):
        raise WebhookRefused("The event has no id or no data.object.")
    first = StripeWebhookEvent.objects.filter(connection=connection, event_id=event_id).first()
    if first is not None:
        return _replayed(first)
    # Stripe is asked (a refund's charge) before the transaction: no network wait holds locks.
    entries = _event_entries(connection, event_type, data["data"]["object"])
    try:
        with transaction.atomic():
            record = StripeWebhookEvent.objects.create(
                connection=connection, event_id=event_id, type=event_type, outcome=WebhookOutcome.IGNORED
            )
            if entries is None:
                record.detail = "not an event revops reads"
            else:
                record.outcome, record.detail = _apply_entries(connection, entries)
            record.save(update_fields=["outcome", "detail"])
            return record
    except IntegrityError:  # the same event delivered twice at once: the other one applied it
        return _replayed(StripeWebhookEvent.objects.get(connection=connection, event_id=event_id))


def _replayed(first: StripeWebhookEvent) -> StripeWebhookEvent:
    return StripeWebhookEvent(
        connection=first.connection,
        event_id=first.event_id,
        type=first.type,
        outcome=WebhookOutcome.REPLAYED,
        detail=f"already received ({first.get_outcome_display().lower()}); nothing changed",
    )


def _event_entries(connection: StripeConnection, event_type: str, obj: dict) -> list | None:
    kind = DOCUMENT_EVENTS.get(event_type)
    if kind is None:
        return None
    if kind == "charge":
        # charge.refunded carries the charge; its refunds are listed (the event omits them).
        client = stripe_for(connection)
        refunds = client.each(client.v1.refunds.list, {"charge": obj["id"]}, f"listing refunds of {obj['id']}")
        charge = client.with_invoice(obj)
        return [("refund", r.to_dict(), charge) for r in refunds]
    if kind == "refund":
        client = stripe_for(connection)
        charge = obj.get("charge")
        if isinstance(charge, str):
            charge = client.call(lambda: client.v1.charges.retrieve(charge), f"reading charge {charge}").to_dict()
        return [("refund", obj, client.with_invoice(charge or {}))]
    return [(kind, obj, None)]


def _apply_entries(connection: StripeConnection, entries: list) -> tuple[str, str]:
    links = dict(
        StripeCustomer.objects.filter(connection=connection, account__isnull=False).values_list(
            "customer_id", "account_id"
        )
    )
    counts: dict = defaultdict(Counter)
    outcomes = sync.documents_apply(connection=connection, entries=entries, links=links, counts=counts)
    ids = ", ".join(e[1]["id"] for e in entries) or "no refunds"
    if outcomes and all(o == "held" for o in outcomes):
        return WebhookOutcome.HELD, f"{ids}: the customer is not matched to an account yet"
    return WebhookOutcome.APPLIED, f"{ids}: {', '.join(outcomes) or 'nothing to record'}"
