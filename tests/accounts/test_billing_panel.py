"""The account page's billing panel: the account's invoices, credit notes and refunds."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, BillingDocument, BillingKind, BillingStatus, OwnerRole, Ownership, Segment
from revops.models import Role

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
TODAY = timezone.localdate()


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T12:00:00+00:00")


@pytest.fixture
def globex(ae):
    account = Account.objects.create(external_id="GLOBEX", name="Globex", segment=Segment.ENTERPRISE)
    Ownership.objects.create(account=account, person=ae, role=OwnerRole.LAND_AE, start_on=TODAY - dt.timedelta(days=30))
    return account


def document(account: Account, external_id: str, kind: str, status: str, amount: str, issued: str, **fields):
    return BillingDocument.objects.create(
        account=account,
        source="stripe:1",
        external_id=external_id,
        kind=kind,
        status=status,
        amount=Decimal(amount),
        issued_at=at(issued),
        **fields,
    )


@pytest.fixture
def billed(globex):
    document(
        globex,
        "in_may",
        BillingKind.INVOICE,
        BillingStatus.PAID,
        "12345.67",
        "2026-05-31",
        paid_at=at("2026-06-03"),
        period_start=dt.date(2026, 5, 1),
        period_end=dt.date(2026, 5, 31),
    )
    document(globex, "in_jun", BillingKind.INVOICE, BillingStatus.OPEN, "800.00", "2026-06-30")
    document(globex, "in_void", BillingKind.INVOICE, BillingStatus.VOID, "99.00", "2026-06-15")
    document(
        globex,
        "cn_1",
        BillingKind.CREDIT_NOTE,
        BillingStatus.ISSUED,
        "200.00",
        "2026-06-10",
        invoice_external_id="in_may",
    )
    document(
        globex, "re_1", BillingKind.REFUND, BillingStatus.ISSUED, "150.50", "2026-06-12", invoice_external_id="in_may"
    )
    document(globex, "in_jpy", BillingKind.INVOICE, BillingStatus.PAID, "5000", "2026-06-01", currency="jpy",
             paid_at=at("2026-06-01"))  # fmt: skip
    other = Account.objects.create(external_id="INITECH", name="Initech", segment=Segment.SMB)
    document(other, "in_other", BillingKind.INVOICE, BillingStatus.PAID, "1.00", "2026-06-01")
    return globex


def billing_url(account: Account) -> str:
    return reverse("accounts:billing", args=[account.external_id])


def rows(html: str) -> list[str]:
    """Each document row's cells as text, in page order."""
    found = []
    for row in re.findall(r'<tr id="billing-\d+">(.*?)</tr>', html, re.S):
        cells = [re.sub(r"<[^>]+>", " ", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        found.append(" | ".join(" ".join(cell.split()) for cell in cells))
    return found


def test_the_owner_reads_each_document_with_its_unit_status_and_dates_newest_first(client, billed, ae):
    client.force_login(ae)

    html = client.get(billing_url(billed), **HTMX).content.decode()

    assert html.lstrip().startswith('<div class="panel-body" id="billing-panel-body">') and "<html" not in html
    assert rows(html) == [
        "in_jun | Invoice | Open (issued, not paid) | 800.00 USD | — | 2026-06-30 | —",
        "in_void | Invoice | Void | 99.00 USD | — | 2026-06-15 | —",
        "re_1 for in_may | Refund | Issued | 150.50 USD | — | 2026-06-12 | —",
        "cn_1 for in_may | Credit note | Issued | 200.00 USD | — | 2026-06-10 | —",
        "in_jpy | Invoice | Paid | 5,000 JPY | — | 2026-06-01 | 2026-06-01",
        "in_may | Invoice | Paid | 12,345.67 USD | 2026-05-01 – 2026-05-31 | 2026-05-31 | 2026-06-03",
    ]
    totals = re.sub(r"<[^>]+>", "", re.search(r'<ul class="plain small" id="billing-totals">(.*?)</ul>', html, re.S)[1])
    assert [" ".join(line.split()) for line in totals.splitlines() if line.strip()] == [
        "Invoiced 5,000 JPY · paid 5,000 JPY · credited 0 JPY · refunded 0 JPY",
        "Invoiced 13,145.67 USD · paid 12,345.67 USD · credited 200.00 USD · refunded 150.50 USD",
    ]
    assert "6 documents · dates in UTC" in html
    assert "in_other" not in html  # another account's invoice


def test_without_htmx_the_panel_is_a_page_of_its_own(client, billed, ae):
    client.force_login(ae)

    html = client.get(billing_url(billed)).content.decode()

    assert "<html" in html and '<a href="/accounts/GLOBEX/">Globex</a> · billing' in html
    assert len(rows(html)) == 6


def test_the_shell_fetches_the_panel_on_load_with_a_link_fallback(client, globex, ae):
    client.force_login(ae)

    html = client.get(reverse("accounts:account", args=["GLOBEX"])).content.decode()

    assert '<section class="card wide panel" id="billing-panel"' in html
    assert 'hx-get="/accounts/GLOBEX/billing/" hx-trigger="load"' in html
    assert '<a href="/accounts/GLOBEX/billing/">Open the billing documents</a>' in html


def test_no_billing_source_connected_says_so(client, globex, ae):
    client.force_login(ae)

    html = client.get(billing_url(globex), **HTMX).content.decode()

    assert "No billing source connected" in html and "<table" not in html
    assert "Billing sources →" not in html  # a seller cannot open Data → Stripe


def test_a_connected_source_without_documents_for_the_account(client, globex, make_user, with_totp):
    from integrations.models import StripeConnection

    StripeConnection.objects.create(name="Stripe", usage_start=dt.date(2026, 1, 1))
    finance = make_user(Role.FINANCE)
    with_totp(finance)
    client.force_login(finance)

    html = client.get(billing_url(globex), **HTMX).content.decode()

    assert "No invoices, credit notes or refunds recorded for Globex." in html
    assert "No billing source connected" not in html
    assert '<a href="/data/connections/stripe/" class="small">Billing sources →</a>' in html


def test_whoever_may_see_the_account_reads_it_and_nobody_else(client, billed, make_user):
    outsider = make_user(Role.AE, email="outsider@example.test")
    client.force_login(outsider)
    assert client.get(billing_url(billed)).status_code == 404
    assert client.get(billing_url(billed), **HTMX).status_code == 404

    for role in (Role.LEADER, Role.PRODUCT):
        client.force_login(make_user(role))
        assert len(rows(client.get(billing_url(billed), **HTMX).content.decode())) == 6, role
    assert client.post(billing_url(billed), **HTMX).status_code == 405


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **HTMX)
    assert response.status_code == 200
    return len(queries)


def test_the_panel_reads_a_constant_number_of_queries_and_shows_the_newest_50(
    client, billed, ae, django_assert_max_num_queries
):
    client.force_login(ae)
    url = billing_url(billed)
    _count(client, url)  # warm the session and the user
    small = _count(client, url)

    BillingDocument.objects.bulk_create(
        BillingDocument(
            account=billed,
            source="stripe:1",
            external_id=f"in_{n:03}",
            kind=BillingKind.INVOICE,
            status=BillingStatus.PAID,
            amount=Decimal("10.00"),
            issued_at=at("2026-01-01") + dt.timedelta(days=n),
            paid_at=at("2026-01-02") + dt.timedelta(days=n),
        )
        for n in range(60)
    )

    assert _count(client, url) == small
    with django_assert_max_num_queries(6):  # session, user, the AE's team, account, totals, documents
        html = client.get(url, **HTMX).content.decode()
    assert len(rows(html)) == 50 and "The newest 50 of 66 documents" in html
    assert "Invoiced 13,745.67 USD · paid 12,945.67 USD" in re.sub(r"<[^>]+>", "", html)
