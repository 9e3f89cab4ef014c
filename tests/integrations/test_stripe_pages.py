# ruff: noqa: F811 (the fixtures imported from stripe_world are the test functions' arguments)
"""Data → Stripe: connect (the key tried against the fake), the matching report, the domain
table, sync now, the run, documents per account. Finance and admin only (the matrix has every cell)."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.billing.services import run_execute, run_request
from integrations.crypto import decrypt_json
from integrations.models import BillingDomain, StripeConnection, StripeRun
from revops.models import Role
from tests.integrations.stripe_world import KEY, TODAY, company, fake_stripe, stripe_world  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(make_user, with_totp):
    person = make_user(Role.FINANCE, email="fin@example.com")
    with_totp(person)
    client = Client()
    client.force_login(person)
    return client


def test_finance_connects_stripe_the_key_is_tried_and_stored_encrypted(finance, fake_stripe, company):
    response = finance.post(
        "/data/connections/stripe/",
        {
            "name": "Billing",
            "secret_key": KEY,
            "webhook_secret": "whsec_abc123",
            "api_base": fake_stripe.url,
            "metadata_key": "revops_account",
            "match_email_domain": "on",
            "usage_mode": "meter_summaries",
            "meter_map": "mtr_1 = api_calls\nmtr_2 = storage_gb",
            "usage_start": "2026-05-01",
        },
    )

    connection = StripeConnection.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/connections/stripe/{connection.pk}/"
    assert KEY not in connection.credentials
    assert decrypt_json(connection.credentials) == {"secret_key": KEY, "webhook_secret": "whsec_abc123"}
    assert connection.meter_map == {"mtr_1": "api_calls", "mtr_2": "storage_gb"}
    page = finance.get(response["Location"]).content.decode()
    assert "Connected Billing: the key works." in page and KEY not in page
    assert f"/hooks/stripe/{connection.pk}/" in page
    listing = finance.get("/data/connections/stripe/").content.decode()
    assert "Billing" in listing and "every 60 min" in listing and "None" not in listing


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"secret_key": "sk_test_wrong"}, "trying the key: Stripe refused the secret key (Invalid API Key provided"),
        ({"secret_key": "pk_test_publishable"}, "The secret key must be a Stripe secret or restricted key"),
        ({"webhook_secret": "secret"}, "The webhook signing secret starts with whsec_"),
        ({"meter_map": "mtr_1 api_calls"}, "line 1: write “Stripe meter or price id = revops meter key”."),
        ({"meter_map": "mtr_1 = nope"}, "mtr_1 maps to “nope”, which is not a revops meter key."),
    ],
)
def test_a_bad_connection_form_says_what_is_wrong_and_stores_nothing(finance, fake_stripe, company, changes, message):
    data = {
        "name": "Billing",
        "secret_key": KEY,
        "api_base": fake_stripe.url,
        "metadata_key": "revops_account",
        "usage_mode": "meter_summaries",
        **changes,
    }

    response = finance.post("/data/connections/stripe/", data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not StripeConnection.objects.exists()


def test_the_connection_page_reports_matching_documents_runs_and_unmatched_reasons(finance, stripe_world):
    w = stripe_world
    run_execute(run_request(connection=w["connection"]).pk, today=TODAY)

    page = finance.get(f"/data/connections/stripe/{w['connection'].pk}/").content.decode()

    assert "1 by metadata · 1 by email domain · 3 unmatched · 1 document held" in page
    assert "no metadata revops_account; email domain initech.io is not in the table" in page
    assert "metadata revops_account=acme-typo names no revops account" in page
    # Acme's invoice, credit note and refund, Globex's JPY invoice; Initech's is held, the draft skipped.
    assert "4 documents." in page and "123.45 USD" in page and "5,000 JPY" in page
    assert "None" not in page and "NaN" not in page
    only_acme = finance.get(f"/data/connections/stripe/{w['connection'].pk}/?account=acme").content.decode()
    assert "3 documents of Acme." in only_acme and "5,000 JPY" not in only_acme


def test_mapping_a_domain_to_an_unknown_account_is_refused_naming_it(finance, stripe_world):
    w = stripe_world
    url = f"/data/connections/stripe/{w['connection'].pk}/domains/"

    bad = finance.post(url, {"domain": "initech.io", "account": "nobody"})
    good = finance.post(url, {"domain": "@Initech.IO", "account": "initech"})

    assert bad.status_code == 400 and "No account has the id “nobody”." in bad.content.decode()
    assert good.status_code == 302
    assert list(BillingDomain.objects.values_list("domain", "account__external_id")) == [
        ("globex.com", "globex"),
        ("initech.io", "initech"),
    ]


def test_removing_a_domain_says_which_and_a_second_remove_says_nothing_changed(finance, stripe_world):
    w = stripe_world
    domain = BillingDomain.objects.get(connection=w["connection"], domain="globex.com")
    url = f"/data/connections/stripe/{w['connection'].pk}/domains/{domain.pk}/remove/"

    first = finance.post(url, follow=True).content.decode()
    second = finance.post(url, follow=True).content.decode()

    assert "globex.com removed; the next sync matches without it." in first
    assert "That domain is not in this connection&#x27;s table (already removed?); nothing changed." in second
    assert not BillingDomain.objects.filter(connection=w["connection"]).exists()


def test_sync_now_queues_one_run_and_its_page_shows_the_counts(finance, stripe_world):
    w = stripe_world
    response = finance.post(f"/data/connections/stripe/{w['connection'].pk}/sync/")
    again = finance.post(f"/data/connections/stripe/{w['connection'].pk}/sync/")

    run = StripeRun.objects.get()  # asking again while one is queued returns that one
    assert response["Location"] == again["Location"] == f"/data/connections/stripe/runs/{run.pk}/"
    run_execute(run.pk, today=TODAY)
    page = finance.get(response["Location"]).content.decode()
    assert "Succeeded" in page and "read 5 · metadata 1 · domain 1 · unmatched 3" in page
    assert "read 4 · created 2 · held 1 · skipped 1" in page  # invoices
    fragment = finance.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="run-status"') and "<html" not in fragment


def test_sellers_cannot_open_the_stripe_pages(make_user, stripe_world):
    client = Client()
    client.force_login(make_user(Role.AE))

    assert client.get("/data/connections/stripe/").status_code == 403
    assert client.get(f"/data/connections/stripe/{stripe_world['connection'].pk}/").status_code == 403


def test_the_webhook_endpoint_refuses_a_form_post_and_an_unknown_connection(stripe_world):
    anonymous = Client()

    form = anonymous.post(f"/hooks/stripe/{stripe_world['connection'].pk}/", {"id": "evt_1"})
    unknown = anonymous.post("/hooks/stripe/999999/", "{}", content_type="application/json")
    get = anonymous.get(f"/hooks/stripe/{stripe_world['connection'].pk}/")

    assert (form.status_code, form.json()) == (400, {"error": "Stripe posts JSON; this body is a form."})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "No such Stripe connection."})
    assert get.status_code == 405
