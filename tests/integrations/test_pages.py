"""Data → Connections: connect, map, preview, run now, history and the run log; the
account page's CRM link. Finance and admin only (the authorization matrix has every cell)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Account
from integrations.crypto import decrypt_json
from integrations.fakes.data import populate_salesforce
from integrations.models import Connection, RunKind, RunLogEntry, RunState, SyncRun
from integrations.services import run_execute, run_request
from revops.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(make_user, with_totp):
    person = make_user(Role.FINANCE, email="fin@example.com")
    with_totp(person)
    client = Client()
    client.force_login(person)
    return client


def test_finance_connects_salesforce_and_the_tokens_are_stored_encrypted(finance):
    response = finance.post(
        "/data/connections/",
        {
            "name": "Acme org",
            "provider": "salesforce",
            "base_url": "https://acme.my.salesforce.com",
            "access_token": "00Dxx!secret-session",
            "refresh_token": "5Aep-refresh",
        },
    )

    connection = Connection.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/connections/{connection.pk}/"
    assert "secret-session" not in connection.credentials
    assert decrypt_json(connection.credentials) == {
        "access_token": "00Dxx!secret-session",
        "refresh_token": "5Aep-refresh",
    }
    assert connection.mapping["account"]["parent"] == "ParentId"
    page = finance.get(response["Location"]).content.decode()
    assert "Connected Acme org" in page and "secret-session" not in page


def test_a_connection_without_any_token_is_refused_naming_the_field(finance):
    response = finance.post(
        "/data/connections/", {"name": "x", "provider": "hubspot", "base_url": "https://api.hubapi.com"}
    )

    assert response.status_code == 200
    assert "Give an access token or a refresh token." in response.content.decode()
    assert not Connection.objects.exists()


def test_the_mapping_editor_saves_and_refuses_a_field_name_that_cannot_be_one(finance, sf_connection):
    path = f"/data/connections/{sf_connection.pk}/mapping/"
    form = {f"{s}.{k}": v for s in ("account", "deal", "writeback") for k, v in sf_connection.mapping[s].items()}
    form |= {"segment_values": "Commercial = mid-market", "team_roles": "Customer Success Manager = csm"}

    bad = finance.post(path, form | {"account.segment": "Tier c; DROP"})
    assert bad.status_code == 400
    assert "account.segment: “Tier c; DROP” is not a CRM field name" in bad.content.decode()

    good = finance.post(path, form | {"account.segment": "Tier__c"})
    assert good.status_code == 302
    sf_connection.refresh_from_db()
    assert sf_connection.mapping["account"]["segment"] == "Tier__c"
    assert sf_connection.mapping["team_roles"] == {"Customer Success Manager": "csm"}


def test_run_now_queues_a_run_and_its_page_shows_the_log(
    finance, fake_sf, sf_connection, make_user, django_assert_max_num_queries
):
    make_user(Role.AE, email="seller0@example.com")
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=30, opportunities=30)
    response = finance.post(f"/data/connections/{sf_connection.pk}/run/", {"kind": "read", "dry_run": "on"})
    run = SyncRun.objects.get()
    assert response["Location"] == f"/data/connections/runs/{run.pk}/"
    assert run.dry_run and run.state == RunState.QUEUED
    # While queued the status polls itself (htmx) as a fragment.
    fragment = finance.get(f"/data/connections/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "<html" not in fragment

    run_execute(run.pk)
    with django_assert_max_num_queries(12):
        page = finance.get(f"/data/connections/runs/{run.pk}/").content.decode()
    assert "Preview: nothing was written." in page
    assert "account" in page and "created 30" in page
    assert "None" not in page and "NaN" not in page
    with django_assert_max_num_queries(12):
        detail = finance.get(f"/data/connections/{sf_connection.pk}/").content.decode()
    assert f"#{run.pk}" in detail and "(preview)" in detail and "None" not in detail
    rejected = finance.get(f"/data/connections/runs/{run.pk}/?outcome=rejected").content.decode()
    assert "No entries." in rejected


def test_a_failed_run_says_why_on_its_page(finance, fake_sf, sf_connection):
    fake_sf.api.fields["Account"].pop("Segment__c")
    run = run_request(connection=sf_connection, kind=RunKind.READ)
    run_execute(run.pk)

    page = finance.get(f"/data/connections/runs/{run.pk}/").content.decode()

    assert "Nothing was written." in page
    assert "The mapping account.segment names Account.Segment__c, which this org does not have." in page


def test_the_account_page_links_to_its_crm_record(finance, fake_sf, sf_connection, make_user):
    make_user(Role.AE, email="seller0@example.com")
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=1, opportunities=0)
    run_execute(run_request(connection=sf_connection, kind=RunKind.READ).pk)
    account = Account.objects.get()

    page = finance.get(f"/accounts/{account.external_id}/").content.decode()
    link = finance.get(f"/data/connections/accounts/{account.external_id}/crm-link/").content.decode()

    assert f'hx-get="/data/connections/accounts/{account.external_id}/crm-link/"' in page
    assert f'href="{fake_sf.url}/lightning/r/Account/{ids["accounts"][0]}/view"' in link
    assert "Open in Salesforce" in link
    assert RunLogEntry.objects.exists()


def test_connections_are_refused_to_everyone_but_finance_and_admin(make_user):
    for role in (Role.AE, Role.CSM, Role.LEADER, Role.PRODUCT):
        client = Client()
        client.force_login(make_user(role))
        assert client.get("/data/connections/").status_code == 403
