"""The four connectors through the browser, as finance sets them up: a warehouse source, a
webhook endpoint, a folder export and Stripe. Each journey clicks from Data's tabs, waits
for a real Celery worker to do the queued work, and reads exact figures off the pages
(and off what the connector wrote outside revops: the receiver's log, the export files).

The worker listens on the broker of the project's Celery app: the live server answers
each request in a thread of its own, where Celery's current app is the project's (the
test thread's is the one ``celery_worker`` makes current).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Page, expect

from accounts.models import Account, Segment
from revops.models import Role
from tests.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# A worker's task takes a few seconds at most; the pages poll every 1-2 s.
WORK_TIMEOUT_MS = 25_000


@pytest.fixture
def worker(celery_worker):
    """A real worker on the broker the live server's threads publish to (emptied first)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return celery_worker(settings.CELERY_BROKER_URL)


@pytest.fixture
def finance_page(logged_in_page, make_user, with_totp) -> Page:
    person = make_user(Role.FINANCE, name="Fran Finance", email="fran@example.test")
    return logged_in_page(person, totp_code=with_totp(person))


def open_data_tab(page: Page, tab: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Data").click()
    page.get_by_role("navigation", name="Data").get_by_role("link", name=tab, exact=True).click()


def text(locator) -> str:
    return " ".join(locator.inner_text().split())


def wait_for(condition, what: str, worker, timeout: float = WORK_TIMEOUT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in {timeout:.0f} s. Worker log:\n{worker.log()}")
        time.sleep(0.2)


# --- a. Warehouse ---------------------------------------------------------------------------


def test_finance_adds_a_warehouse_source_previews_fixes_the_bad_row_and_pulls_usage(
    finance_page, live_server, warehouse, worker
):
    from revops.clock import yesterday_utc
    from usage.models import DailyRollup, Meter, MeterTier

    day = yesterday_utc()
    acme = Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    calls = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=calls, up_to=None, unit_price=Decimal("0.001"))
    loaded = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    warehouse.rows(
        "daily_usage",
        [
            ("acme", "api-calls", day - dt.timedelta(days=1), Decimal("500"), 2, loaded),
            ("acme", "api-calls", day, Decimal("12345.5"), 40, loaded),
            ("internal-test", "api-calls", day, Decimal("1"), 1, loaded),  # the warehouse's own test customer
        ],
    )
    page = finance_page

    open_data_tab(page, "Warehouse")
    expect(page.locator("h1")).to_have_text("Warehouse sources")
    form = page.locator("main form").filter(has=page.locator("input[name=map_account]"))
    form.locator("input[name=name]").fill("Analytics")
    form.locator("input[name=url]").fill(warehouse.dsn)
    form.locator("select[name=mode]").select_option("aggregates")
    form.locator("textarea[name=query]").fill("SELECT * FROM daily_usage ORDER BY usage_day, customer")
    form.locator("input[name=cursor_column]").fill("updated_at")
    form.locator("select[name=cursor_kind]").select_option("timestamp")
    form.locator("input[name=schedule_minutes]").fill("0")
    for name, column in (("account", "customer"), ("meter", "metric"), ("day", "usage_day"), ("quantity", "total")):
        form.locator(f"input[name=map_{name}]").fill(column)
    form.locator("input[name=map_event_count]").fill("events")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("Saved Analytics. Test & preview it before its first pull.")

    page.get_by_role("button", name="Test & preview").click()
    preview = page.locator("#preview")
    expect(preview.locator("h2")).to_have_text("Preview: first 3 rows")
    expect(preview).to_contain_text("1 problem: a pull of these rows would apply nothing.")
    problems = preview.locator("#preview-problems tbody tr")
    expect(problems).to_have_count(1)
    expect(problems).to_have_text(re.compile(r"^\s*3\s*customer\s*unknown account 'internal-test'\s*$"))
    bad_cell = preview.locator("table").last.locator("tbody tr").nth(2).locator("td.cell-error")
    expect(bad_cell).to_have_text(re.compile(r"^internal-test\s*unknown account 'internal-test'\s*$"))

    # The fix: leave the warehouse's test customer out of the query.
    settings = page.locator("main form").filter(has=page.locator("input[name=map_account]"))
    settings.locator("textarea[name=query]").fill(
        "SELECT * FROM daily_usage WHERE customer <> 'internal-test' ORDER BY usage_day, customer"
    )
    settings.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("Saved. The next pull uses it; test & preview it first.")
    page.get_by_role("button", name="Test & preview").click()
    expect(page.locator("#preview h2")).to_have_text("Preview: first 2 rows")
    expect(page.locator("#preview")).to_contain_text("No problems in these rows.")

    page.get_by_role("button", name="Pull now").click()
    expect(page.locator("h1")).to_have_text(re.compile(r"^Pull #\d+ of Analytics$"))
    summary = page.locator("section").filter(has=page.get_by_role("heading", name="Summary"))
    expect(summary.locator("#pull-state .status")).to_have_text("Succeeded", timeout=WORK_TIMEOUT_MS)
    expect(summary.locator("tr").filter(has_text="Rows read")).to_have_text(re.compile(r"Rows read\s*2$"))
    expect(summary.locator("tr").filter(has_text="created")).to_have_text(re.compile(r"created\s*2$"))

    # The pull's commit asks the worker to fold the new aggregates into the daily rollups.
    wait_for(lambda: DailyRollup.objects.filter(account=acme, day=day).exists(), "the rollup fold", worker)
    page.goto(f"{live_server.url}/accounts/acme/")
    page.get_by_role("link", name="Usage day by day").click()
    expect(page.locator("h1")).to_contain_text("Acme · usage")
    row = page.locator("tbody tr").filter(has_text=day.strftime("%a %Y-%m-%d"))
    expect(row.locator("td")).to_have_text([f"{day:%a %Y-%m-%d}", "API calls", "12,345.5", "$12.35"])
    expect(page.locator("tfoot")).to_have_text(re.compile(r"Total\s*\$12\.85$"))  # 12.3455 + 0.50
    screenshot(page, "journey-warehouse")


# --- b. Webhooks ----------------------------------------------------------------------------


@pytest.fixture
def receiver():
    from tests.webhooks.conftest import Receiver

    running = Receiver(status=200)
    running.start()
    yield running
    running.stop()


def test_finance_adds_a_webhook_endpoint_copies_its_secret_and_a_test_event_is_delivered(
    finance_page, receiver, worker
):
    page = finance_page

    open_data_tab(page, "Webhooks")
    expect(page.locator("h1")).to_have_text("Webhooks")
    form = page.locator("main form").filter(has=page.locator("input[name=url]"))
    form.locator("input[name=name]").fill("Ops hooks")
    form.locator("input[name=url]").fill(receiver.url)
    form.locator("input[name=event_types][value='sync.failed']").check()
    form.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#messages")).to_contain_text("Endpoint Ops hooks added. Copy its signing secret now.")
    secret = page.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_"), secret
    receiver.secrets.append(secret)  # the receiver's owner pastes it into their verifier

    page.reload()  # shown once
    expect(page.get_by_label("Signing secret")).to_have_count(0)

    page.get_by_role("button", name="Send a test event").click()
    expect(page.locator("#messages")).to_contain_text("Test event queued (delivery 1).")
    attempts = page.locator("#attempts")
    expect(attempts.locator(".status")).to_have_text("Delivered", timeout=WORK_TIMEOUT_MS)
    expect(attempts.locator("tbody tr")).to_have_count(1)
    expect(attempts.locator("tbody tr td").nth(2)).to_have_text("HTTP 200")
    webhook_id = page.locator(".page-head .mono").inner_text().removeprefix("webhook-id ")

    page.get_by_role("link", name="Ops hooks").click()
    log = page.locator("#delivery-log")
    expect(log).to_contain_text("1 delivery.")
    expect(log.locator("tbody tr")).to_have_text(
        re.compile(rf"^\s*1\s*webhook\.test\s*{re.escape(webhook_id)}\s*Delivered\s*1\s*HTTP 200\s")
    )
    expect(page.locator("main")).to_contain_text("0 waiting · 1 delivered · 0 failed")
    # The receiver accepted it only because the signature verified with the secret shown.
    assert [(r.webhook_id, r.type, r.data["endpoint"], r.signatures) for r in receiver.got] == [
        (webhook_id, "webhook.test", "Ops hooks", 1)
    ]
    assert receiver.refused == []
    screenshot(page, "journey-webhooks")


# --- c. Exports -----------------------------------------------------------------------------


def test_finance_adds_a_folder_export_runs_a_day_and_the_partition_holds_those_rows(finance_page, tmp_path, worker):
    from usage.models import DailyRollup, Meter

    day = dt.date(2026, 4, 29)
    acme = Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    globex = Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    calls = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    storage = Meter.objects.create(key="storage-gb", name="Storage", unit="GB")
    for account, meter, on, quantity, revenue in (
        (acme, calls, day, "1200.5", "12.005"),
        (acme, storage, day, "10", "2.5"),
        (globex, calls, day, "7", "0.07"),
        (acme, calls, day + dt.timedelta(days=1), "100", "1"),  # the next day: not in this run
    ):
        DailyRollup.objects.create(
            account=account, meter=meter, day=on, quantity=Decimal(quantity), revenue=Decimal(revenue), event_count=1
        )
    lake = tmp_path / "lake"
    page = finance_page

    open_data_tab(page, "Exports")
    expect(page.locator("h1")).to_have_text("Exports for BI")
    form = page.locator("main form").filter(has=page.locator("input[name=url]"))
    form.locator("input[name=name]").fill("Lake")
    form.locator("input[name=url]").fill(f"file://{lake}")
    form.get_by_label("CSV").check()  # Parquet is ticked already
    for title in ("Daily account metrics", "Alerts", "Comp ledger lines"):
        form.get_by_label(title).uncheck()
    form.locator("select[name=schedule]").select_option("manual")
    form.get_by_role("button", name="Add").click()
    expect(page.locator("#messages")).to_contain_text("Added Lake. Test the connection, then run a first export.")

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#messages")).to_contain_text(f"Wrote, read back and deleted a probe object in folder {lake}.")

    run = page.locator("main form").filter(has=page.locator("input[name=first_day]"))
    run.locator("input[name=first_day]").fill(day.isoformat())
    run.locator("input[name=last_day]").fill(day.isoformat())
    run.get_by_role("button", name="Export these days").click()
    status = page.locator("#run-status")
    expect(status.locator(".status")).to_have_text("Succeeded", timeout=WORK_TIMEOUT_MS)
    expect(page.locator(".page-head")).to_contain_text(f"To Lake · {day.isoformat()} · ")
    # rollups: 1 partition, 3 rows, 3 files (CSV, Parquet and the manifest)
    expect(status.locator("tbody tr").first).to_have_text(re.compile(r"^rollups\s*1\s*3\s*3\s*[\d,]+$"))
    partitions = status.locator("#run-partitions tbody tr")
    expect(partitions).to_have_count(1)
    expect(partitions).to_have_text(re.compile(rf"^rollups/dt={day.isoformat()}/\s*3\s*[\d,]+\s*\d{{4}}-"))
    screenshot(page, "journey-exports")

    folder = lake / "rollups" / f"dt={day.isoformat()}"
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "part-0000.csv", "part-0000.parquet"]
    with Path(folder / "part-0000.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["account"], r["meter"], r["day"], r["quantity"]) for r in rows) == [
        ("acme", "api-calls", "2026-04-29", "1200.500000"),
        ("acme", "storage-gb", "2026-04-29", "10.000000"),
        ("globex", "api-calls", "2026-04-29", "7.000000"),
    ]
    assert pq.read_table(folder / "part-0000.parquet").num_rows == 3
    assert sorted(p.name for p in (lake / "rollups").iterdir()) == [f"dt={day.isoformat()}"]


# --- d. Stripe ------------------------------------------------------------------------------

STRIPE_KEY = "sk_test_journey"


@pytest.fixture
def fake_stripe():
    from integrations.fakes.stripe import FakeStripe, running_stripe

    with running_stripe(FakeStripe(secret_key=STRIPE_KEY)) as running:
        yield running


def test_finance_connects_stripe_maps_a_domain_syncs_and_sees_customers_and_billing_on_accounts(
    finance_page, fake_stripe, worker
):
    from accounts.models import BillingDocument

    for key in ("acme", "globex", "initech"):
        Account.objects.create(external_id=key, name=key.title(), segment=Segment.SMB)
    api = fake_stripe.api
    acme = api.add_customer(email="ap@acme.test", name="Acme Inc", metadata={"revops_account": "acme"})
    globex = api.add_customer(email="billing@globex.com", name="Globex Corp")
    api.add_customer(email="someone@gmail.com", name="Unknown Ltd")
    invoice = api.add_invoice(acme, lines=[{"amount": 10000}, {"amount": 2345}], status="paid")
    api.add_credit_note(invoice, 2000)
    api.add_refund(invoice, 1500)
    api.add_invoice(globex, lines=[{"amount": 5000}], status="open")
    page = finance_page

    open_data_tab(page, "Stripe")
    expect(page.locator("h1")).to_have_text("Stripe")
    form = page.locator("main form").filter(has=page.locator("input[name=secret_key]"))
    form.locator("input[name=name]").fill("Stripe (test)")
    form.locator("input[name=secret_key]").fill(STRIPE_KEY)
    form.locator("input[name=api_base]").fill(fake_stripe.url)
    form.get_by_role("button", name="Connect").click()
    expect(page.locator("#messages")).to_contain_text("Connected Stripe (test): the key works.")

    domains = page.locator("main form").filter(has=page.locator("input[name=domain]"))
    domains.locator("input[name=domain]").fill("globex.com")
    domains.locator("input[name=account]").fill("globex")
    domains.get_by_role("button", name="Map the domain").click()
    expect(page.locator("#messages")).to_contain_text("globex.com → Globex; the next sync matches its customers.")

    page.get_by_role("button", name="Sync now").click()
    status = page.locator("#run-status")
    expect(status.locator(".status")).to_have_text("Succeeded", timeout=WORK_TIMEOUT_MS)
    counts = status.locator("tbody tr")
    expect(counts.filter(has_text="customers")).to_have_text(
        re.compile(r"customers\s*read 3 · metadata 1 · domain 1 · unmatched 1")
    )
    expect(counts.filter(has_text="invoice").first).to_have_text(re.compile(r"invoice\s*read 2 · created 2"))

    page.get_by_role("link", name="Stripe (test)").click()
    matching = page.locator("section").filter(has=page.get_by_role("heading", name="Matching"))
    expect(matching).to_contain_text("1 by metadata · 1 by email domain · 1 unmatched")
    expect(matching.locator("tbody tr").filter(has_text="Acme Inc")).to_contain_text("By metadata")
    expect(matching.locator("tbody tr").filter(has_text="Globex Corp")).to_contain_text("By email domain")
    documents = page.locator("section").filter(has=page.get_by_role("heading", name="Billing documents"))
    expect(documents).to_contain_text("4 documents.")

    # From the matching table to the account, whose billing panel loads by htmx.
    matching.get_by_role("link", name="Acme", exact=True).click()
    expect(page.locator("h1")).to_have_text("Acme")
    panel = page.locator("#billing-panel")
    expect(panel.locator("#billing-totals")).to_have_text(
        "Invoiced 123.45 USD · paid 123.45 USD · credited 20.00 USD · refunded 15.00 USD"
    )
    expect(panel.locator("#billing-documents tbody tr")).to_have_count(3)
    issued = {d.kind: d for d in BillingDocument.objects.filter(account__external_id="acme")}
    paid_invoice = issued["invoice"]
    expect(panel.locator(f"#billing-{paid_invoice.pk} td")).to_have_text(
        [
            paid_invoice.external_id,
            "Invoice",
            "Paid",
            "123.45 USD",
            f"{paid_invoice.period_start:%Y-%m-%d} – {paid_invoice.period_end:%Y-%m-%d}",
            f"{paid_invoice.issued_at:%Y-%m-%d}",
            f"{paid_invoice.paid_at:%Y-%m-%d}",
        ]
    )
    refund = issued["refund"]
    expect(panel.locator(f"#billing-{refund.pk} td").nth(1)).to_have_text("Refund")
    expect(panel.locator(f"#billing-{refund.pk} td").nth(3)).to_have_text("15.00 USD")
    expect(panel.locator("#billing-count")).to_have_text("3 documents · dates in UTC")
    screenshot(page, "journey-stripe")

    page.goto(page.url.replace("/accounts/acme/", "/accounts/globex/"))
    expect(page.locator("#billing-totals")).to_have_text(
        "Invoiced 50.00 USD · paid 0.00 USD · credited 0.00 USD · refunded 0.00 USD"
    )
    page.goto(page.url.replace("/accounts/globex/", "/accounts/initech/"))
    expect(page.locator("#billing-empty")).to_have_text("No invoices, credit notes or refunds recorded for Initech.")
