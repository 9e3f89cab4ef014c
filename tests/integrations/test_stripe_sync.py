# ruff: noqa: F811 (the fixtures imported from stripe_world are the test functions' arguments)
"""Stripe end to end: the real ``stripe`` client against the local fake Stripe over HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import BillingDocument
from integrations.billing.services import run_execute, run_request
from integrations.models import HeldDocument, MatchedBy, RunState, StripeConnection, StripeCustomer
from tests.integrations.stripe_world import KEY, TODAY, captured_events, company, fake_stripe, stripe_world  # noqa: F401
from usage.ingestion.rollups import fold_deltas
from usage.models import DailyRollup

pytestmark = pytest.mark.django_db


def _sync(connection, today=TODAY, page_size=2, **options):
    return run_execute(run_request(connection=connection, **options).pk, today=today, page_size=page_size)


def _rollups():
    fold_deltas()
    return {
        (r.account.external_id, r.meter.key, r.day): r.quantity
        for r in DailyRollup.objects.select_related("account", "meter")
    }


def test_first_sync_matches_customers_imports_usage_and_records_documents(stripe_world):
    w = stripe_world

    run = _sync(w["connection"])

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["customers"] == {"read": 5, "metadata": 1, "domain": 1, "unmatched": 3}
    reasons = dict(StripeCustomer.objects.filter(matched_by=MatchedBy.UNMATCHED).values_list("customer_id", "reason"))
    assert reasons == {
        w["customers"]["initech"]: "no metadata revops_account; email domain initech.io is not in the table",
        w["customers"]["typo"]: "metadata revops_account=acme-typo names no revops account",
        w["customers"]["anon"]: "no metadata revops_account and no email address",
    }
    # Usage of the two matched customers only, from usage_start (05-25): 1200 + 0.5 + 10.125 + 3.25.
    assert run.counts["usage"] == {"read": 4, "new": 4, "events": 4, "quantity": "1213.875"}
    assert _rollups() == {
        ("acme", "api_calls", dt.date(2026, 5, 28)): Decimal("1200"),
        ("acme", "api_calls", dt.date(2026, 5, 29)): Decimal("0.5"),
        ("acme", "storage_gb", dt.date(2026, 5, 29)): Decimal("10.125"),
        ("globex", "storage_gb", dt.date(2026, 5, 30)): Decimal("3.25"),
    }
    docs = {d.external_id: d for d in BillingDocument.objects.select_related("account")}
    acme_invoice = docs[w["invoices"]["acme"]]
    # 10000 + 2345 cents = $123.45, paid; the period is May (its last day the 31st).
    assert (acme_invoice.account.external_id, acme_invoice.kind, acme_invoice.status) == ("acme", "invoice", "paid")
    assert acme_invoice.amount == Decimal("123.45") and acme_invoice.currency == "usd"
    assert (acme_invoice.period_start, acme_invoice.period_end) == (dt.date(2026, 5, 1), dt.date(2026, 5, 31))
    assert acme_invoice.paid_at is not None and acme_invoice.source == f"stripe:{w['connection'].pk}"
    # JPY is zero-decimal: ¥5000 stays 5000, open.
    jpy = docs[w["invoices"]["globex_jpy"]]
    assert (jpy.account.external_id, jpy.amount, jpy.currency, jpy.status) == ("globex", Decimal("5000"), "jpy", "open")
    assert jpy.paid_at is None
    note, refund = docs[w["notes"]["acme"]], docs[w["refunds"]["acme"]]
    assert (note.kind, note.status, note.amount, note.invoice_external_id) == (
        "credit_note",
        "issued",
        Decimal("20.00"),
        w["invoices"]["acme"],
    )
    assert (refund.kind, refund.status, refund.amount, refund.invoice_external_id) == (
        "refund",
        "issued",
        Decimal("15.00"),
        w["invoices"]["acme"],
    )
    assert note.period_start == refund.period_start == dt.date(2026, 5, 1)  # their invoice's period
    # The draft is skipped; Initech's paid invoice is held until Initech is matched.
    assert w["invoices"]["draft"] not in docs and w["invoices"]["initech"] not in docs
    assert run.counts["invoice"] == {"read": 4, "created": 2, "skipped": 1, "held": 1}
    assert list(HeldDocument.objects.values_list("external_id", flat=True)) == [w["invoices"]["initech"]]
    # Pages of 2, newest first: 5 customers in 3 list calls (after the key check's limit=1), 4 invoices in 2.
    pages = [q.get("starting_after") for q in w["api"].calls_to("/v1/customers") if q["limit"] == ["2"]]
    assert pages == [None, [w["customers"]["typo"]], [w["customers"]["globex"]]]
    assert len(w["api"].calls_to("/v1/invoices")) == 2


def test_incremental_sync_adjusts_raised_usage_keeps_lowered_and_releases_held_documents(stripe_world):
    w = stripe_world
    api, c, calls = w["api"], w["customers"], w["meters"]["calls"]
    _sync(w["connection"])
    cursor = StripeConnection.objects.get(pk=w["connection"].pk).cursors["invoice"]
    # A day later: the 29th restated up (0.5 → 2.5), the 28th down (1200 → 1000), a new day;
    # Initech's domain is mapped now, and Acme's open invoice of June is paid.
    api.record_usage(calls, c["acme"], dt.date(2026, 5, 29), "2.5")
    api.record_usage(calls, c["acme"], dt.date(2026, 5, 28), 1000)
    api.record_usage(calls, c["acme"], dt.date(2026, 6, 1), 40)
    june = api.add_invoice(c["acme"], lines=[{"amount": 999}], period=(dt.date(2026, 6, 1), dt.date(2026, 7, 1)))
    api.set_invoice_status(june, "paid")
    from integrations.billing.services import domain_set

    domain_set(connection=w["connection"], domain="initech.io", account_external_id="initech")

    run = _sync(w["connection"], today=dt.date(2026, 6, 1))

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["customers"] == {"read": 5, "metadata": 1, "domain": 2, "unmatched": 2}
    # Acme was read through 06-01, so it re-reads from 3 days before (05-29) to 06-02: the 29th's
    # calls 2.5 (adjusted: +2.0), the 29th's storage 10.125 (unchanged), June 1st's 40 (new); the
    # 28th is before the window, so its 1000 is not seen. Globex: the 30th's 3.25 (unchanged).
    # Initech, matched now, from usage_start: the 29th's 999 (new). 2.0 + 40 + 999 = 1041.
    assert run.counts["usage"] == {
        "read": 5,
        "adjusted": 1,
        "unchanged": 2,
        "new": 2,
        "events": 3,
        "quantity": "1041",
    }
    rollups = _rollups()
    assert rollups[("acme", "api_calls", dt.date(2026, 5, 29))] == Decimal("2.5")
    assert rollups[("acme", "api_calls", dt.date(2026, 5, 28))] == Decimal("1200")
    assert rollups[("acme", "api_calls", dt.date(2026, 6, 1))] == Decimal("40")
    assert rollups[("initech", "api_calls", dt.date(2026, 5, 29))] == Decimal("999")
    docs = {d.external_id: d for d in BillingDocument.objects.select_related("account")}
    assert docs[june].status == "paid" and docs[june].amount == Decimal("9.99")
    held = docs[w["invoices"]["initech"]]
    assert (held.account.external_id, held.amount, held.status) == ("initech", Decimal("9.99"), "paid")
    assert not HeldDocument.objects.exists()
    assert run.counts["held_released"] == {"documents": 1}
    # Incremental: the second read asks for invoices created since the cursor less 45 days.
    second = [q["created[gte]"] for q in api.calls_to("/v1/invoices") if "created[gte]" in q]
    assert second == [[str(cursor - 45 * 86_400)]] * 3  # 5 invoices, pages of 2


def test_usage_lowered_in_stripe_is_kept_and_counted_not_sent_as_negative(stripe_world):
    w = stripe_world
    _sync(w["connection"])
    w["api"].record_usage(w["meters"]["calls"], w["customers"]["acme"], dt.date(2026, 5, 29), "0.25")

    run = _sync(w["connection"], today=dt.date(2026, 5, 31))

    # Re-read from 05-29 (through 06-01 less 3 days): the 29th's two meters, Globex's 30th.
    assert run.counts["usage"] == {"read": 3, "lowered": 1, "unchanged": 2, "quantity": "0"}
    assert _rollups()[("acme", "api_calls", dt.date(2026, 5, 29))] == Decimal("0.5")
    from integrations.models import StripeUsage

    lowered = StripeUsage.objects.get(lowered_to__isnull=False)
    assert (lowered.value, lowered.lowered_to) == (Decimal("0.5"), Decimal("0.25"))


@pytest.mark.slow  # the client's own backoff: 0.5 s, then 1 s
def test_the_client_retries_injected_500s_and_waits_out_a_429(stripe_world):
    w = stripe_world
    w["api"].fail_next(2, status=500, after=1)  # the second and third requests of the run
    w["api"].fail_next(1, status=429)

    run = _sync(w["connection"])

    assert run.state == RunState.SUCCEEDED, run.error
    # Two 500s retried by the client itself, one 429 waited out by our backoff.
    assert run.retries == 3
    assert BillingDocument.objects.count() == 4


@pytest.mark.slow  # the client's backoff: 0.5 + 1 + 2 s
def test_a_run_failing_after_the_retries_names_stripe_s_answer_and_writes_nothing(stripe_world, captured_events):
    w = stripe_world
    # Customers and invoices read fine; the credit notes' request fails 4 times (1 + 3 retries).
    w["api"].fail_next(4, status=500, after=5)

    run = _sync(w["connection"])

    assert run.state == RunState.FAILED
    assert run.error == (
        "listing credit notes: Stripe answered 500 after 3 retries: Something went wrong on Stripe's end (injected)."
    )
    assert not BillingDocument.objects.exists() and not StripeCustomer.objects.exists()
    assert _rollups() == {}
    assert StripeConnection.objects.get(pk=w["connection"].pk).cursors == {}
    assert [(e.type, e.data["run"], e.data["source"]) for e in captured_events] == [("sync.failed", run.pk, "stripe")]


def test_a_wrong_key_fails_the_run_saying_stripe_refused_it(stripe_world):
    from integrations.crypto import encrypt_json

    w = stripe_world
    connection = w["connection"]
    connection.credentials = encrypt_json({"secret_key": "sk_test_wrong"})
    connection.save()

    run = _sync(connection)

    assert run.state == RunState.FAILED
    assert run.error.startswith("listing customers: Stripe refused the secret key (Invalid API Key provided")


def test_invoice_lines_mode_imports_mapped_prices_on_the_period_s_first_day(fake_stripe, company):
    from integrations.billing.services import connection_create

    api = fake_stripe.api
    customer = api.add_customer(email="a@acme.test", metadata={"revops_account": "acme"})
    invoice = api.add_invoice(
        customer,
        lines=[
            {"amount": 500, "price": "price_calls", "quantity": 1500},
            {"amount": 100, "price": "price_support", "quantity": 1},  # not mapped: not usage
        ],
        period=(dt.date(2026, 5, 1), dt.date(2026, 6, 1)),
    )
    connection = connection_create(
        name="Lines",
        api_base=fake_stripe.url,
        secret_key=KEY,
        usage_mode="invoice_lines",
        meter_map={"price_calls": "api_calls"},
        usage_start=dt.date(2026, 5, 1),
    )

    run = _sync(connection)
    again = _sync(connection)

    assert run.counts["usage"] == {"read": 1, "new": 1, "events": 1, "quantity": "1500"}
    assert again.counts["usage"] == {"read": 1, "unchanged": 1, "quantity": "0"}
    assert _rollups() == {("acme", "api_calls", dt.date(2026, 5, 1)): Decimal("1500")}
    assert BillingDocument.objects.get().external_id == invoice


def test_an_invoice_with_more_lines_than_stripe_embeds_is_read_to_its_last_line(fake_stripe, company):
    """Stripe embeds an invoice's first 10 lines (``has_more``); the other 15 come from its
    lines list, and every one of the 25 is usage."""
    from integrations.billing.services import connection_create

    api = fake_stripe.api
    customer = api.add_customer(email="a@acme.test", metadata={"revops_account": "acme"})
    invoice = api.add_invoice(
        customer,
        lines=[{"amount": 10, "price": "price_calls", "quantity": 100 + k} for k in range(25)],
        period=(dt.date(2026, 5, 1), dt.date(2026, 6, 1)),
    )
    connection = connection_create(
        name="Lines",
        api_base=fake_stripe.url,
        secret_key=KEY,
        usage_mode="invoice_lines",
        meter_map={"price_calls": "api_calls"},
        usage_start=dt.date(2026, 5, 1),
    )

    run = _sync(connection)

    # 100 + 101 + … + 124 = 25 × 100 + (0 + … + 24) = 2,800.
    assert run.counts["usage"] == {"read": 25, "new": 25, "events": 25, "quantity": "2800"}
    assert _rollups() == {("acme", "api_calls", dt.date(2026, 5, 1)): Decimal("2800")}
    assert {p for p, _ in api.calls if p.endswith("/lines")} == {f"/v1/invoices/{invoice}/lines"}


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [(12345, "usd", "123.45"), (5000, "JPY", "5000.00"), (1, "eur", "0.01"), (12340, "kwd", "12.34"), (0, "usd", "0")],
)
def test_money_divides_by_the_currency_s_minor_unit_exactly(minor, currency, expected):
    from integrations.billing.documents import money

    assert money(minor, currency) == Decimal(expected)


def test_a_three_decimal_amount_that_two_places_cannot_hold_is_skipped_saying_why():
    from integrations.billing.documents import DocumentSkipped, money

    with pytest.raises(DocumentSkipped, match="12345 KWD has more than two decimal places"):
        money(12345, "kwd")
