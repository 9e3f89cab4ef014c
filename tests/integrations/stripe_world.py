"""The Stripe tests' world: a fake Stripe account over HTTP and a company with three accounts."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Account
from integrations.billing.services import connection_create
from integrations.fakes.stripe import FakeStripe, running_stripe
from usage.models import Meter

KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_secret"
TODAY = dt.date(2026, 5, 31)
MAY = (dt.date(2026, 5, 1), dt.date(2026, 6, 1))


@pytest.fixture
def captured_events():
    """The domain events emitted during the test, in order."""
    from revops.events import domain_event

    seen = []

    def listen(sender, **kwargs):
        seen.extend(kwargs["events"] if "events" in kwargs else [kwargs["event"]])

    domain_event.connect(listen, weak=False)
    yield seen
    domain_event.disconnect(listen)


@pytest.fixture
def fake_stripe():
    with running_stripe(FakeStripe(secret_key=KEY)) as running:
        yield running


@pytest.fixture
def company(db):
    accounts = {
        key: Account.objects.create(external_id=key, name=key.title(), segment="smb")
        for key in ("acme", "globex", "initech")
    }
    meters = {key: Meter.objects.create(key=key, name=key, unit="unit") for key in ("api_calls", "storage_gb")}
    return {"accounts": accounts, "meters": meters}


@pytest.fixture
def stripe_world(fake_stripe, company):
    """Five customers (two matched by metadata or domain, three not), usage on two meters,
    invoices in USD and JPY, a credit note and a refund."""
    api: FakeStripe = fake_stripe.api
    calls = api.add_meter(event_name="api_requests")
    storage = api.add_meter(event_name="storage")
    c = {
        "acme": api.add_customer(email="ap@acme.test", name="Acme", metadata={"revops_account": "acme"}),
        "globex": api.add_customer(email="billing@Globex.com", name="Globex"),
        "initech": api.add_customer(email="ops@initech.io", name="Initech"),
        "typo": api.add_customer(email="x@acme.test", metadata={"revops_account": "acme-typo"}),
        "anon": api.add_customer(),
    }
    api.record_usage(calls, c["acme"], dt.date(2026, 5, 28), 1200)
    api.record_usage(calls, c["acme"], dt.date(2026, 5, 29), "0.5")
    api.record_usage(storage, c["acme"], dt.date(2026, 5, 29), "10.125")
    api.record_usage(storage, c["globex"], dt.date(2026, 5, 30), "3.25")
    api.record_usage(calls, c["globex"], dt.date(2026, 5, 20), 77)  # before usage_start: not read
    api.record_usage(calls, c["initech"], dt.date(2026, 5, 29), 999)  # unmatched: not imported
    invoices = {
        "acme": api.add_invoice(
            c["acme"],
            lines=[{"amount": 10000, "price": "price_calls", "quantity": 1200}, {"amount": 2345, "price": "price_gb"}],
            period=MAY,
            status="paid",
        ),
        "globex_jpy": api.add_invoice(c["globex"], lines=[{"amount": 5000}], currency="jpy", period=MAY),
        "initech": api.add_invoice(c["initech"], lines=[{"amount": 999}], period=MAY, status="paid"),
        "draft": api.add_invoice(c["acme"], lines=[{"amount": 1}], status="draft"),
    }
    notes = {"acme": api.add_credit_note(invoices["acme"], 2000)}
    refunds = {"acme": api.add_refund(invoices["acme"], 1500)}
    domain_connection = connection_create(
        name="Fake Stripe",
        api_base=fake_stripe.url,
        secret_key=KEY,
        webhook_secret=WEBHOOK_SECRET,
        meter_map={calls: "api_calls", storage: "storage_gb"},
        usage_start=dt.date(2026, 5, 25),
    )
    from integrations.billing.services import domain_set

    domain_set(connection=domain_connection, domain="globex.com", account_external_id="globex")
    return {
        "accounts": company["accounts"],
        "revops_meters": company["meters"],
        "api": api,
        "connection": domain_connection,
        "customers": c,
        "meters": {"calls": calls, "storage": storage},  # Stripe's (the company's are "revops_meters")
        "invoices": invoices,
        "notes": notes,
        "refunds": refunds,
    }
