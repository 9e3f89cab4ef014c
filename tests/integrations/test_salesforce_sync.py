"""Salesforce read sync end to end: the real simple-salesforce client, over https, against
the local fake org (integrations.fakes.salesforce), into accounts, owners and contracts."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest

from accounts.models import Account, Contract, OwnerRole, Ownership
from integrations.fakes.data import populate_salesforce
from integrations.models import Outcome, RunKind, RunLogEntry, RunState, SyncRun
from integrations.services import run_execute, run_request
from revops.models import Role

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 6, 1)


def _read(connection, *, today=TODAY, **options) -> SyncRun:
    run = run_request(connection=connection, kind=RunKind.READ, **options)
    done = run_execute(run.pk, today=today)
    assert done is not None
    return done


@pytest.fixture
def sellers(make_user):
    return [make_user(Role.AE, email=f"seller{i}@example.com") for i in range(4)] + [
        make_user(Role.CSM, email="cs1@example.com")
    ]


def test_first_sync_of_5000_accounts_builds_the_hierarchy_owners_and_contracts(fake_sf, sf_connection, sellers):
    ids = populate_salesforce(
        fake_sf.api,
        emails=[f"seller{i}@example.com" for i in range(4)],
        csm_emails=["cs1@example.com"],
        accounts=5000,
        opportunities=5000,
    )
    started = time.perf_counter()
    run = _read(sf_connection)
    seconds = time.perf_counter() - started
    print(f"first sync, 5,000 accounts + 5,000 opportunities: {seconds:.1f} s")

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["account"] == {"read": 5000, "created": 5000}
    assert run.counts["contract"] == {"read": 5000, "created": 5000}
    assert Account.objects.count() == 5000
    # Every third account (i % 3 == 2) is a division of an earlier one.
    assert Account.objects.filter(parent__isnull=False).count() == 1666
    third = Account.objects.get(external_id=ids["accounts"][2])
    assert third.parent.external_id in ids["accounts"][:2]
    assert third.segment == "smb" and Account.objects.get(external_id=ids["accounts"][1]).segment == "mid-market"
    # Land AE on every account, CSM (team role) on every other one; first owners own from the first contract.
    assert Ownership.objects.filter(role=OwnerRole.LAND_AE, end_on__isnull=True).count() == 5000
    assert Ownership.objects.filter(role=OwnerRole.CSM).count() == 2500
    first = Account.objects.get(external_id=ids["accounts"][0])
    land = first.ownerships.get(role=OwnerRole.LAND_AE)
    assert land.person.email == "seller0@example.com"
    assert land.start_on == first.contracts.get().start_on
    # Committed ARR is the deal's amount; the TCV covers the term; the end is the term's last day.
    deal = fake_sf.api.records["Opportunity"][ids["deals"][0]]
    contract = Contract.objects.get(external_id=ids["deals"][0])
    term = deal["Term_Months__c"]
    assert contract.committed_arr == Decimal(deal["Amount"])
    assert contract.tcv == (Decimal(deal["Amount"]) * term / 12).quantize(Decimal("0.01"))
    assert contract.ramp_days == deal["Ramp_Days__c"]
    assert contract.start_on == dt.date.fromisoformat(deal["CloseDate"])
    # The cursors are the newest SystemModstamp seen of each object.
    assert set(run.cursors_after) == {"User", "Account", "AccountTeamMember", "Opportunity"}
    # 5,000 accounts in 2,000-record pages: three query pages, two nextRecordsUrl follow-ups.
    pages = [path for method, path in fake_sf.api.requests if "/query" in path]
    assert len([p for p in pages if p.endswith("-2000")]) >= 2


def test_a_second_sync_reads_only_what_changed_since_the_cursor(fake_sf, sf_connection, sellers):
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=300, opportunities=300)
    _read(sf_connection)
    for crm_id in ids["accounts"][:100]:
        fake_sf.api.update("Account", crm_id, Name=f"Renamed {crm_id}")
    sf_connection.refresh_from_db()

    started = time.perf_counter()
    run = _read(sf_connection)
    print(f"incremental sync of 100 changes: {time.perf_counter() - started:.2f} s")

    assert run.state == RunState.SUCCEEDED, run.error
    # The cursor's own record is read again (>=), unchanged.
    assert run.counts["account"]["updated"] == 100
    assert run.counts["account"]["read"] <= 101
    assert Account.objects.get(external_id=ids["accounts"][0]).name == f"Renamed {ids['accounts'][0]}"
    assert RunLogEntry.objects.filter(run=run, outcome=Outcome.UPDATED, object_type="account").count() == 100
    entry = RunLogEntry.objects.filter(run=run, record_id=ids["accounts"][0]).get()
    assert entry.changes == {"name": ["Account 00001", f"Renamed {ids['accounts'][0]}"]}


def test_an_owner_change_mid_quarter_starts_a_new_ownership_on_the_day_it_was_seen(fake_sf, sf_connection, sellers):
    ids = populate_salesforce(
        fake_sf.api, emails=["seller0@example.com", "seller1@example.com"], accounts=4, opportunities=4
    )
    _read(sf_connection, today=dt.date(2026, 4, 1))
    account = ids["accounts"][0]
    fake_sf.api.update("Account", account, OwnerId=ids["users"][1])
    sf_connection.refresh_from_db()

    run = _read(sf_connection, today=dt.date(2026, 5, 14))

    assert run.state == RunState.SUCCEEDED, run.error
    periods = list(
        Ownership.objects.filter(account__external_id=account, role=OwnerRole.LAND_AE)
        .order_by("start_on")
        .values_list("person__email", "start_on", "end_on")
    )
    contract_start = Contract.objects.get(external_id=ids["deals"][0]).start_on
    assert periods == [
        ("seller0@example.com", contract_start, dt.date(2026, 5, 13)),
        ("seller1@example.com", dt.date(2026, 5, 14), None),
    ]
    entry = RunLogEntry.objects.get(run=run, object_type="owner")
    assert entry.changes == {"person": ["seller0@example.com", "seller1@example.com"], "from": "2026-05-14"}


def test_an_owner_who_is_not_a_person_in_revops_is_rejected_with_the_reason(fake_sf, sf_connection, sellers):
    ids = populate_salesforce(fake_sf.api, emails=["stranger@elsewhere.example"], accounts=2, opportunities=0)

    run = _read(sf_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    assert Account.objects.count() == 2
    rejected = RunLogEntry.objects.filter(run=run, object_type="owner", outcome=Outcome.REJECTED)
    assert rejected.count() == 2
    assert rejected.first().reason == (
        f"owner stranger@elsewhere.example ({ids['users'][0]}) is not a person in revops (import people first)"
    )
