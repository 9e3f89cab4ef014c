"""HubSpot end to end: the real hubspot-api-client against the local fake portal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, Contract, OwnerRole, Ownership
from integrations.fakes.data import populate_hubspot
from integrations.models import Outcome, RunKind, RunLogEntry, RunState
from integrations.services import record_url, run_execute, run_request
from revops.models import Role
from usage.models import AccountMetrics

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 6, 1)


def _run(connection, kind=RunKind.READ, today=TODAY, **options):
    return run_execute(run_request(connection=connection, kind=kind, **options).pk, today=today)


@pytest.fixture
def people(make_user):
    return [make_user(Role.AE, email="seller0@example.com"), make_user(Role.CSM, email="cs1@example.com")]


def test_first_sync_reads_companies_with_parents_owners_and_closed_won_deals(fake_hs, hs_connection, people):
    ids = populate_hubspot(
        fake_hs.api, emails=["seller0@example.com"], csm_emails=["cs1@example.com"], companies=250, deals=300
    )
    fake_hs.api.add(
        "deals",
        company=ids["companies"][0],
        dealname="Lost",
        amount="5000",
        closedate="2026-01-01T00:00:00.000Z",
        dealstage="closedlost",
    )

    run = _run(hs_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["account"] == {"read": 250, "created": 250}
    assert run.counts["contract"] == {"read": 300, "created": 300}  # the lost deal is not a contract
    assert Account.objects.filter(parent__isnull=False).count() == 83
    child = Account.objects.get(external_id=f"hs-{ids['companies'][2]}")
    assert child.parent.external_id in {f"hs-{c}" for c in ids["companies"][:2]}
    assert Ownership.objects.filter(role=OwnerRole.CSM).count() == 125
    contract = Contract.objects.get(external_id=f"hs-deal-{ids['deals'][0]}")
    deal = fake_hs.api.objects["deals"][ids["deals"][0]]["properties"]
    assert contract.committed_arr == Decimal(deal["amount"])
    assert contract.account.external_id == f"hs-{ids['companies'][0]}"
    # 250 companies in pages of 100: three list calls.
    assert len([p for m, p in fake_hs.api.requests if p == "/crm/v3/objects/companies" and m == "GET"]) >= 3
    assert (
        record_url(hs_connection, ids["companies"][0])
        == f"https://app.hubspot.com/contacts/4242/company/{ids['companies'][0]}"
    )


def test_an_incremental_sync_searches_since_the_cursor_and_follows_an_owner_change(
    fake_hs, hs_connection, people, make_user
):
    make_user(Role.AE, email="seller1@example.com")
    ids = populate_hubspot(fake_hs.api, emails=["seller0@example.com", "seller1@example.com"], companies=20, deals=20)
    _run(hs_connection, today=dt.date(2026, 4, 1))
    company = ids["companies"][0]
    fake_hs.api.update("companies", company, hubspot_owner_id=ids["owners"][1], name="Renamed")
    fake_hs.api.update("deals", ids["deals"][1], amount="999000")
    hs_connection.refresh_from_db()

    run = _run(hs_connection, today=dt.date(2026, 5, 14))

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["account"]["read"] <= 2 and run.counts["account"]["updated"] == 1
    assert ("POST", "/crm/v3/objects/companies/search") in fake_hs.api.requests
    assert Contract.objects.get(external_id=f"hs-deal-{ids['deals'][1]}").committed_arr == Decimal("999000")
    periods = list(
        Ownership.objects.filter(account__external_id=f"hs-{company}", role=OwnerRole.LAND_AE)
        .order_by("start_on")
        .values_list("person__email", "end_on")
    )
    assert periods == [("seller0@example.com", dt.date(2026, 5, 13)), ("seller1@example.com", None)]


def test_a_429_storm_is_waited_out_with_retry_after(fake_hs, hs_connection, people):
    populate_hubspot(fake_hs.api, emails=["seller0@example.com"], companies=10, deals=10)
    fake_hs.api.rate_limited, fake_hs.api.retry_after = 4, "0"

    run = _run(hs_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.rate_limit_waits == 4 and Account.objects.count() == 10


def test_merged_and_archived_companies_are_logged_and_kept(fake_hs, hs_connection, people):
    ids = populate_hubspot(fake_hs.api, emails=["seller0@example.com"], companies=4, deals=4)
    _run(hs_connection)
    winner, loser, gone = ids["companies"][0], ids["companies"][1], ids["companies"][3]
    fake_hs.api.merge(winner, loser)
    fake_hs.api.archive("companies", gone)
    hs_connection.refresh_from_db()

    run = _run(hs_connection)

    log = {e.record_id: e.outcome for e in RunLogEntry.objects.filter(run=run, object_type="account")}
    assert log == {loser: Outcome.MERGED, gone: Outcome.DELETED}
    assert Contract.objects.get(external_id=f"hs-deal-{ids['deals'][1]}").account.external_id == f"hs-{winner}"
    assert Account.objects.count() == 4


def test_a_mapping_to_a_property_the_portal_lacks_fails_naming_it(fake_hs, hs_connection, people):
    populate_hubspot(fake_hs.api, emails=["seller0@example.com"], companies=3, deals=0)
    fake_hs.api.properties["companies"].remove("revops_segment")

    run = _run(hs_connection)

    assert run.state == RunState.FAILED
    assert (
        run.error
        == "The mapping account.segment names the companies property revops_segment, which this portal does not have."
    )
    assert Account.objects.count() == 0


def test_write_back_updates_company_properties_in_batches_only_when_changed(fake_hs, hs_connection, people):
    ids = populate_hubspot(fake_hs.api, emails=["seller0@example.com"], companies=150, deals=0)
    _run(hs_connection)
    for account in Account.objects.all():
        AccountMetrics.objects.create(
            account=account,
            as_of=TODAY,
            run_rate=Decimal("1200.50"),
            committed_arr=Decimal("10000"),
            burn_rate=Decimal("0.1201"),
            band="escalate",
            net_new_arr=0,
            revenue_30d=0,
            consumed_in_term=0,
            meters_active=1,
            workloads=1,
            feature_adoption=0,
            health_score=40,
            computed_at=timezone.now(),
        )
    fake_hs.api.archive("companies", ids["companies"][149])  # gone since the read: HubSpot answers 207

    run = _run(hs_connection, RunKind.WRITEBACK)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["account"] == {"read": 150, "changed": 150, "unchanged": 0, "written": 149, "rejected": 1}
    assert fake_hs.api.batch_calls == 2  # 100 + 50
    first = fake_hs.api.objects["companies"][ids["companies"][0]]["properties"]
    assert (first["revops_burn_rate"], first["revops_run_rate"], first["revops_health"]) == ("12.01", "1200.50", "40")
    rejected = RunLogEntry.objects.get(run=run, outcome=Outcome.REJECTED)
    assert rejected.record_id == ids["companies"][149] and rejected.reason.startswith("OBJECT_NOT_FOUND")
    again = _run(hs_connection, RunKind.WRITEBACK)
    assert again.counts["account"]["changed"] == 1  # only the one that failed is tried again
