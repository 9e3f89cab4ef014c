"""Each app emits its domain event inside the change's transaction, with a useful payload;
the outbox turns it into one delivery per subscribed endpoint."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account
from revops.clock import today_utc
from revops.events import EVENT_TYPES
from revops.models import Role
from usage.models import Alert, AlertEvent, AlertState, ImportJob, ImportKind
from webhooks.models import Delivery, Message
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(db):
    return endpoint_create(name="All", url="https://hooks.example.com/in", event_types=list(EVENT_TYPES)).endpoint


def _bodies(event_type: str) -> list[dict]:
    return [json.loads(m.body)["data"] for m in Message.objects.filter(type=event_type).order_by("id")]


def _alert(account: Account, owner, n: int = 1) -> Alert:
    return Alert.objects.create(
        account=account,
        kind="plateau",
        severity=2,
        state=AlertState.OPEN,
        owner=owner,
        revenue_at_risk=Decimal("1250.50") * n,
        opened_on=dt.date(2026, 11, 1),
        last_seen_on=dt.date(2026, 11, 1),
    )


def test_refresh_batch_of_opened_alerts_is_one_message_insert(endpoint, make_user, team):
    from usage.signals.services import _emit_alert_events

    csm = make_user(Role.CSM, team=team)
    accounts = [Account.objects.create(external_id=f"ACME-{n}", name=f"Acme {n}", segment="smb") for n in (1, 2, 3)]
    events = [AlertEvent(alert=_alert(a, csm, n), action="opened", to_state="open") for n, a in enumerate(accounts, 1)]
    with CaptureQueriesContext(connection) as queries:
        _emit_alert_events(events)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "webhooks_message"')]
    assert len(inserts) == 1
    # 2 lookups (accounts, teams) + lock endpoints + insert messages + insert deliveries + bump sequence
    # (+ savepoint and release).
    assert len(queries.captured_queries) <= 8
    data = _bodies("alert.opened")
    assert [d["account"]["external_id"] for d in data] == ["ACME-1", "ACME-2", "ACME-3"]
    # 1,250.50 × 1, × 2, × 3
    assert [d["revenue_at_risk"] for d in data] == ["1250.50", "2501.00", "3751.50"]
    assert data[0]["link"] == f"/alerts/{events[0].alert.pk}/history/"
    assert Message.objects.first().team_ids == [team.pk]
    assert list(Delivery.objects.order_by("sequence").values_list("sequence", flat=True)) == [1, 2, 3]


def test_resolving_an_alert_emits_alert_cleared(endpoint, make_user, team):
    from usage.signals.services import alert_act

    csm = make_user(Role.CSM, team=team)
    account = Account.objects.create(external_id="ACME", name="Acme", segment="smb")
    alert = _alert(account, csm)
    alert_act(alert_ids=[alert.pk], actor=csm, action="resolve", today=today_utc(), note="called them")
    (data,) = _bodies("alert.cleared")
    assert (data["alert_id"], data["state"], data["account"]["name"]) == (alert.pk, "resolved", "Acme")


def test_failed_import_job_emits_import_failed(endpoint, make_user):
    admin = make_user(Role.ADMIN, email="imports@example.com")
    job = ImportJob.objects.create(
        kind=ImportKind.ACCOUNTS,
        file_name="accounts.csv",
        path="/nonexistent/a.csv",
        sha256="x",
        size_bytes=1,
        created_by=admin,
    )
    from usage.ingestion.jobs import import_job_run

    import_job_run(job.pk)
    (data,) = _bodies("import.failed")
    assert data["import_job_id"] == job.pk and data["file_name"] == "accounts.csv" and data["error_count"] == 1
    assert data["errors"] == [{"line": 0, "column": "", "reason": "the uploaded file is gone; upload it again"}]
    assert data["created_by"] == "imports@example.com" and data["link"] == f"/data/imports/{job.pk}/"


def test_crm_run_that_lost_its_worker_emits_sync_failed(endpoint, settings):
    from integrations.models import Connection, RunKind, RunState, SyncRun
    from integrations.services import fail_stuck_runs

    crm = Connection.objects.create(name="CRM", provider="salesforce", base_url="https://example.my.salesforce.com")
    run = SyncRun.objects.create(
        connection=crm,
        kind=RunKind.READ,
        state=RunState.RUNNING,
        started_at=timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120),
    )
    assert fail_stuck_runs() == 1
    (data,) = _bodies("sync.failed")
    assert data["run_id"] == run.pk and data["connection"] == {"id": crm.pk, "name": "CRM", "provider": "salesforce"}
    assert data["error"] == "The worker running it stopped; run it again."


def test_statement_approved_then_paid_emit_their_events(endpoint, make_user, team):
    from comp.services import statement_approve, statements_mark_paid

    finance = make_user(Role.FINANCE, email="fin-hooks@example.com")
    ae = make_user(Role.AE, team=team, email="ae-hooks@example.com")
    period = dt.date(2026, 10, 1)
    statement_approve(person=ae, period=period, approver=finance)
    assert statements_mark_paid(viewer=finance, period=period, paid_on=dt.date(2026, 11, 5)) == 1
    (approved,) = _bodies("statement.approved")
    (paid,) = _bodies("statement.paid")
    assert approved["person"]["email"] == "ae-hooks@example.com" and approved["period"] == "2026-10"
    assert approved["link"] == f"/comp/statements/{ae.pk}/2026-10/" and approved["paid_on"] == ""
    assert paid["paid_on"] == "2026-11-05" and paid["statement_id"] == approved["statement_id"]
    assert all(isinstance(v, str) for v in paid["totals"].values())  # amounts as strings
    assert list(Message.objects.values_list("team_ids", flat=True)) == [[team.pk], [team.pk]]
