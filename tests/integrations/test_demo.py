"""The demo connection: the fake org mirrors the demo company, so a first read changes only
what was edited "in the CRM" (manage.py crm_demo salesforce)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import Account, Contract
from integrations.fakes.salesforce import FakeSalesforce
from integrations.fakes.server import RunningFake
from integrations.management.commands.crm_demo import mirror_demo_company
from integrations.models import Outcome, Provider, RunKind, RunLogEntry, RunState
from integrations.services import connection_create, run_execute, run_request

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_a_first_read_of_the_demo_fake_changes_only_what_the_crm_changed(tmp_path):
    call_command("seed_demo", "--accounts", "24", "--months", "3")
    contracts_before = set(Contract.objects.values_list("external_id", "end_on", "committed_arr"))
    api = FakeSalesforce()
    mirrored = mirror_demo_company(api)
    with RunningFake(api, tls_dir=tmp_path) as running:
        connection = connection_create(
            name="Demo",
            provider=Provider.SALESFORCE,
            base_url=running.url,
            ca_file=running.ca_file,
            credentials={"access_token": "fake-session"},
        )
        run = run_execute(run_request(connection=connection, kind=RunKind.READ).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.counts["account"]["read"] == mirrored + 1
    assert run.counts["account"]["created"] == 1 and run.counts["account"]["updated"] == 3
    assert run.counts["contract"] == {"read": 2, "created": 2}
    assert contracts_before < set(Contract.objects.values_list("external_id", "end_on", "committed_arr"))
    assert Account.objects.filter(name__endswith="(renamed in CRM)").count() == 3
    assert RunLogEntry.objects.filter(run=run, object_type="owner", outcome=Outcome.UPDATED).count() == 1
    assert not RunLogEntry.objects.filter(run=run, outcome=Outcome.REJECTED).exists()
