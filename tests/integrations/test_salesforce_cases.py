"""The hard cases against the fake org: write-back of only changed values, a rate-limit
storm, a bad mapping, deleted and merged accounts, a record edited in both places."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account, Contract, Ownership
from integrations.fakes.data import populate_salesforce
from integrations.models import ExternalRecord, Outcome, RunKind, RunLogEntry, RunState
from integrations.services import connection_update_mapping, run_execute, run_request
from revops.audit import acting_as
from revops.errors import ApplicationError
from revops.models import Role
from usage.models import AccountMetrics

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 6, 1)


def _run(connection, kind=RunKind.READ, **options):
    run = run_request(connection=connection, kind=kind, **options)
    return run_execute(run.pk, today=TODAY)


@pytest.fixture
def seller(make_user):
    return make_user(Role.AE, email="seller0@example.com")


def _metrics(account: Account, *, burn: str, run_rate: str, health: int, band: str, gate: dt.date | None):
    return AccountMetrics.objects.update_or_create(
        account=account,
        as_of=TODAY,
        defaults={
            "run_rate": Decimal(run_rate),
            "committed_arr": Decimal("100000"),
            "burn_rate": Decimal(burn),
            "band": band,
            "net_new_arr": 0,
            "revenue_30d": 0,
            "consumed_in_term": 0,
            "meters_active": 1,
            "workloads": 1,
            "feature_adoption": 0,
            "health_score": health,
            "next_gate_on": gate,
            "computed_at": timezone.now(),
        },
    )


def test_write_back_sends_only_the_values_that_changed(fake_sf, sf_connection, seller):
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=3, opportunities=3)
    assert _run(sf_connection).state == RunState.SUCCEEDED
    accounts = [Account.objects.get(external_id=i) for i in ids["accounts"]]
    for account in accounts:
        _metrics(account, burn="0.3300", run_rate="33000.00", health=61, band="escalate", gate=dt.date(2026, 7, 1))

    first = _run(sf_connection, RunKind.WRITEBACK)

    assert first.state == RunState.SUCCEEDED, first.error
    assert first.counts["account"] == {"read": 3, "changed": 3, "unchanged": 0, "written": 3, "rejected": 0}
    record = fake_sf.api.records["Account"][ids["accounts"][0]]
    # Burn rate as a percent field (33%), money to the cent, the gate as a date; no forecast yet (null).
    assert record["Revops_Burn_Rate__c"] == 33.0
    assert record["Revops_Run_Rate__c"] == 33000.0
    assert record["Revops_Health__c"] == 61
    assert record["Revops_Band__c"] == "escalate"
    assert record["Revops_Next_Gate__c"] == "2026-07-01"
    assert record["Revops_Forecast_90d__c"] is None
    assert fake_sf.api.composite_calls == 1

    # One account's health moves: only that field of that account is sent.
    _metrics(accounts[1], burn="0.3300", run_rate="33000.00", health=64, band="escalate", gate=dt.date(2026, 7, 1))
    fake_sf.api.patched.clear()
    second = _run(sf_connection, RunKind.WRITEBACK)

    assert second.counts["account"] == {"read": 3, "changed": 1, "unchanged": 2, "written": 1, "rejected": 0}
    assert fake_sf.api.patched == [{"id": ids["accounts"][1], "Revops_Health__c": 64}]
    # Nothing changed: nothing is sent at all.
    third = _run(sf_connection, RunKind.WRITEBACK)
    assert third.counts["account"]["changed"] == 0 and fake_sf.api.composite_calls == 2


def test_a_write_back_preview_writes_nothing_to_the_crm(fake_sf, sf_connection, seller):
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=1, opportunities=1)
    _run(sf_connection)
    _metrics(Account.objects.get(), burn="0.8000", run_rate="80000.00", health=90, band="expand", gate=None)

    run = _run(sf_connection, RunKind.WRITEBACK, dry_run=True)

    assert run.state == RunState.SUCCEEDED
    assert fake_sf.api.composite_calls == 0
    assert fake_sf.api.records["Account"][ids["accounts"][0]]["Revops_Health__c"] is None
    entry = RunLogEntry.objects.get(run=run)
    assert entry.reason == "would be written" and entry.changes["Revops_Health__c"] == "90"


def test_a_rate_limit_storm_is_waited_out_and_the_sync_completes(fake_sf, sf_connection, seller):
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=50, opportunities=50)
    fake_sf.api.rate_limited = 5  # the next five calls answer 403 REQUEST_LIMIT_EXCEEDED

    run = _run(sf_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.rate_limit_waits == 5
    assert Account.objects.count() == 50


def test_a_storm_that_does_not_end_fails_the_run_saying_so_and_writes_nothing(fake_sf, sf_connection, seller, settings):
    settings.CRM_RETRY_MAX = 3
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=5, opportunities=5)
    fake_sf.api.rate_limited = 1000

    run = _run(sf_connection)

    assert run.state == RunState.FAILED
    assert "still rate-limited after 3 retries (REQUEST_LIMIT_EXCEEDED)" in run.error
    assert Account.objects.count() == 0
    sf_connection.refresh_from_db()
    assert sf_connection.cursors == {}


def test_a_mapping_to_a_field_the_org_lacks_fails_with_the_field_named_and_writes_nothing(
    fake_sf, sf_connection, seller
):
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=5, opportunities=5)
    mapping = sf_connection.mapping | {"account": sf_connection.mapping["account"] | {"segment": "Tier__c"}}
    connection_update_mapping(connection=sf_connection, mapping=mapping)

    run = _run(sf_connection)

    assert run.state == RunState.FAILED
    assert run.error == "The mapping account.segment names Account.Tier__c, which this org does not have."
    assert Account.objects.count() == 0 and Contract.objects.count() == 0


def test_a_mapping_whose_values_every_account_refuses_writes_nothing(fake_sf, sf_connection, seller):
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=6, opportunities=6)
    # Industry values are not segments: every account is refused.
    mapping = sf_connection.mapping | {"account": sf_connection.mapping["account"] | {"segment": "Industry"}}
    connection_update_mapping(connection=sf_connection, mapping=mapping)

    run = _run(sf_connection)

    assert run.state == RunState.FAILED
    assert run.error.startswith(
        "Every one of the 6 accounts read was refused, so nothing was written: check the mapping."
    )
    assert "segment: 'Software' is not one of enterprise, mid-market, smb" in run.error
    assert Account.objects.count() == 0 and Ownership.objects.count() == 0
    assert ExternalRecord.objects.count() == 0


def test_one_bad_account_is_rejected_with_its_reason_and_its_division_with_it(fake_sf, sf_connection, seller):
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=6, opportunities=0)
    bad = ids["accounts"][0]
    fake_sf.api.update("Account", bad, Segment__c="Galactic")
    fake_sf.api.update("Account", ids["accounts"][2], ParentId=bad)

    run = _run(sf_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    assert Account.objects.count() == 4
    reasons = dict(RunLogEntry.objects.filter(run=run, outcome=Outcome.REJECTED).values_list("record_id", "reason"))
    assert reasons == {
        bad: "segment: 'Galactic' is not one of enterprise, mid-market, smb",
        ids["accounts"][2]: f"parent_external_id: unknown account '{bad}' (not in this file or the database)",
    }


def test_deleted_and_merged_accounts_are_kept_logged_and_no_longer_written_back(fake_sf, sf_connection, seller):
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=4, opportunities=4)
    _run(sf_connection)
    winner, loser, gone = ids["accounts"][0], ids["accounts"][1], ids["accounts"][3]
    fake_sf.api.merge(winner, loser)
    fake_sf.api.delete("Account", gone)
    sf_connection.refresh_from_db()

    run = _run(sf_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    log = {e.record_id: e for e in RunLogEntry.objects.filter(run=run, object_type="account")}
    kept = "the revops account is kept (its usage and comp history stay) and no longer synced or written back"
    assert log[loser].outcome == Outcome.MERGED and log[loser].reason == f"merged into {winner} in the CRM; {kept}"
    assert log[gone].outcome == Outcome.DELETED and log[gone].reason == f"deleted in the CRM; {kept}"
    assert Account.objects.count() == 4  # usage and comp history hang on them
    # The loser's opportunity moved to the winner in the CRM: its contract follows.
    assert Contract.objects.get(external_id=ids["deals"][1]).account.external_id == winner
    live = set(
        ExternalRecord.objects.filter(object_type="account", deleted_at__isnull=True).values_list("crm_id", flat=True)
    )
    assert live == {winner, ids["accounts"][2]}


def test_an_account_edited_in_revops_and_in_the_crm_says_so_and_the_crm_wins(fake_sf, sf_connection, seller):
    ids = populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=2, opportunities=0)
    _run(sf_connection)
    crm_id = ids["accounts"][0]
    with acting_as(seller.pk):
        Account.objects.filter(external_id=crm_id).update(name="Edited in revops")
    fake_sf.api.update("Account", crm_id, Name="Edited in the CRM")
    sf_connection.refresh_from_db()

    run = _run(sf_connection)

    entry = RunLogEntry.objects.get(run=run, record_id=crm_id)
    assert entry.outcome == Outcome.CONFLICT
    assert "edited in revops (" in entry.reason and "the CRM owns accounts, so its values were kept" in entry.reason
    assert entry.changes == {"name": ["Edited in revops", "Edited in the CRM"]}
    assert Account.objects.get(external_id=crm_id).name == "Edited in the CRM"


def test_a_read_preview_checks_everything_and_writes_nothing(fake_sf, sf_connection, seller):
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=10, opportunities=10)

    run = _run(sf_connection, dry_run=True)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["account"] == {"read": 10, "created": 10}
    assert RunLogEntry.objects.filter(run=run, outcome=Outcome.CREATED).count() == 30  # accounts, contracts, owners
    assert Account.objects.count() == 0
    sf_connection.refresh_from_db()
    assert sf_connection.cursors == {}


def test_an_expired_session_is_refreshed_with_the_refresh_token_and_stored_encrypted(fake_sf, sf_connection, seller):
    from integrations.crypto import decrypt_json

    fake_sf.api.tokens.clear()  # the stored session expired
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=2, opportunities=0)

    run = _run(sf_connection)

    assert run.state == RunState.SUCCEEDED, run.error
    sf_connection.refresh_from_db()
    stored = decrypt_json(sf_connection.credentials)
    assert stored["access_token"].startswith("fake-session-") and "fake-session" not in sf_connection.credentials


def test_a_mapping_with_a_wrong_role_is_refused_naming_it(sf_connection):
    mapping = sf_connection.mapping | {"team_roles": {"Account Manager": "boss"}}

    with pytest.raises(ApplicationError, match="team role “Account Manager” maps to “boss”"):
        connection_update_mapping(connection=sf_connection, mapping=mapping)
