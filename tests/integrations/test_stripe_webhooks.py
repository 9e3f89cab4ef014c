# ruff: noqa: F811 (the fixtures imported from stripe_world are the test functions' arguments)
"""Stripe's webhooks end to end: the fake posts signed events over HTTP to the live server."""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal

import pytest

from accounts.models import BillingDocument
from integrations.billing.services import run_execute, run_request
from integrations.fakes.stripe import sign
from integrations.models import HeldDocument, StripeWebhookEvent
from tests.integrations.stripe_world import TODAY, WEBHOOK_SECRET, company, fake_stripe, stripe_world  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def synced(stripe_world, live_server):
    w = stripe_world
    run = run_execute(run_request(connection=w["connection"]).pk, today=TODAY)
    assert run.state == "succeeded", run.error
    w["url"] = f"{live_server.url}/hooks/stripe/{w['connection'].pk}/"
    return w


def _send(w, type_, obj, **options):
    event = w["api"].event(type_, obj, event_id=options.pop("event_id", ""))
    status, body = w["api"].send_event(w["url"], options.pop("secret", WEBHOOK_SECRET), event, **options)
    return event, status, json.loads(body)


def test_invoice_paid_updates_the_recorded_invoice_at_once_and_a_replay_changes_nothing(synced):
    w = synced
    invoice_id = w["invoices"]["globex_jpy"]
    invoice = w["api"].set_invoice_status(invoice_id, "paid")

    event, status, body = _send(w, "invoice.paid", invoice)

    assert (status, body["outcome"]) == (200, "applied"), body
    doc = BillingDocument.objects.get(external_id=invoice_id)
    assert doc.status == "paid" and doc.amount == Decimal("5000")
    assert doc.paid_at == dt.datetime.fromtimestamp(invoice["status_transitions"]["paid_at"], dt.UTC)
    before = doc.updated_at

    _, again, replay = _send(w, "invoice.paid", {**invoice, "status": "void"}, event_id=event["id"])

    assert (again, replay["outcome"]) == (200, "replayed")
    assert replay["detail"] == "already received (applied); nothing changed"
    doc.refresh_from_db()
    assert doc.status == "paid" and doc.updated_at == before
    assert list(StripeWebhookEvent.objects.values_list("event_id", "type", "outcome")) == [
        (event["id"], "invoice.paid", "applied")
    ]


def test_a_bad_signature_is_refused_with_the_reason_and_writes_nothing(synced):
    w = synced
    invoice = w["api"].set_invoice_status(w["invoices"]["globex_jpy"], "void")

    _, status, body = _send(w, "invoice.voided", invoice, secret="whsec_someone_else")

    assert status == 400
    assert body["error"] == (
        "Stripe-Signature refused: No signatures found matching the expected signature for payload"
    )
    assert BillingDocument.objects.get(external_id=invoice["id"]).status == "open"
    assert not StripeWebhookEvent.objects.exists()


def test_a_signature_older_than_five_minutes_is_refused_as_a_replay(synced):
    w = synced
    invoice = w["api"].set_invoice_status(w["invoices"]["globex_jpy"], "void")

    _, status, body = _send(w, "invoice.voided", invoice, timestamp=int(time.time()) - 301)

    assert status == 400
    assert body["error"] == (
        "Stripe-Signature refused: the signature's timestamp is more than 300 s old (a replayed delivery?)"
    )
    assert BillingDocument.objects.get(external_id=invoice["id"]).status == "open"


def test_a_delivery_without_the_signature_header_is_refused(synced):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(synced["url"], data=b"{}", method="POST")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310

    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error"].startswith("Stripe-Signature refused: No Stripe-Signature header")


def test_charge_refunded_records_the_charge_s_new_refund_against_its_invoice(synced):
    w = synced
    api = w["api"]
    refund_id = api.add_refund(w["invoices"]["acme"], 700)
    charge = api.charges[api.refunds[refund_id]["charge"]]

    _, status, body = _send(w, "charge.refunded", charge)

    assert status == 200, body
    # The charge's two refunds, newest first: the new one created, the sync's first one unchanged.
    assert body["detail"] == f"{refund_id}, {w['refunds']['acme']}: created, unchanged"
    refund = BillingDocument.objects.get(external_id=refund_id)
    assert (refund.kind, refund.status, refund.amount, refund.invoice_external_id) == (
        "refund",
        "issued",
        Decimal("7.00"),
        w["invoices"]["acme"],
    )
    assert refund.account.external_id == "acme" and refund.period_start == dt.date(2026, 5, 1)


def test_a_credit_note_of_an_unmatched_customer_is_held_not_recorded(synced):
    w = synced
    note_id = w["api"].add_credit_note(w["invoices"]["initech"], 300)

    _, status, body = _send(w, "credit_note.created", w["api"].credit_notes[note_id])

    assert (status, body["outcome"]) == (200, "held")
    assert not BillingDocument.objects.filter(external_id=note_id).exists()
    assert HeldDocument.objects.filter(external_id=note_id).exists()


def test_an_event_type_revops_does_not_read_is_acknowledged_and_logged(synced):
    w = synced
    _, status, body = _send(w, "customer.created", w["api"].customers[w["customers"]["acme"]])

    assert (status, body["outcome"], body["detail"]) == (200, "ignored", "not an event revops reads")


def test_the_signature_helper_matches_what_the_stripe_library_verifies():
    import stripe

    payload = '{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}'

    assert stripe.WebhookSignature.verify_header(payload, sign(payload, "whsec_x"), "whsec_x", tolerance=300)
