"""Runs through a real broker and `celery worker`; the schedule queues what is due."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from accounts.models import Account
from integrations.fakes.data import populate_salesforce
from integrations.models import Connection, RunKind, RunState, SyncRun
from integrations.services import fail_stuck_runs, run_request, schedule_due_runs
from revops.models import Role


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # the worker commits; the test must see it
def test_run_now_is_executed_by_the_worker_over_the_broker(
    celery_worker, celery_redis_url, fake_sf, sf_connection, make_user
):
    make_user(Role.AE, email="seller0@example.com")
    populate_salesforce(fake_sf.api, emails=["seller0@example.com"], accounts=20, opportunities=20)
    celery_worker(celery_redis_url, env={"CRM_RETRY_BASE_S": "0.01"})

    run = run_request(connection=sf_connection, kind=RunKind.READ)  # sent on commit (autocommit here)

    deadline = time.monotonic() + 60
    while SyncRun.objects.get(pk=run.pk).state in (RunState.QUEUED, RunState.RUNNING):
        assert time.monotonic() < deadline, "the worker did not finish the run within 60 s"
        time.sleep(0.2)
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.error
    assert Account.objects.count() == 20


@pytest.mark.django_db
def test_the_schedule_queues_a_read_when_a_connection_is_due_and_never_twice(sf_connection):
    now = timezone.now()
    first = schedule_due_runs(now=now)
    again = schedule_due_runs(now=now)  # the first is still queued: the same run
    assert first == again and len(first) == 1

    SyncRun.objects.all().delete()
    Connection.objects.filter(pk=sf_connection.pk).update(last_read_at=now - dt.timedelta(minutes=30))
    assert schedule_due_runs(now=now) == []  # hourly: not due yet
    Connection.objects.filter(pk=sf_connection.pk).update(last_read_at=now - dt.timedelta(minutes=61))
    assert len(schedule_due_runs(now=now)) == 1


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_failed_saying_so(sf_connection, settings):
    run = SyncRun.objects.create(
        connection=sf_connection,
        kind=RunKind.READ,
        state=RunState.RUNNING,
        started_at=timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120),
    )

    assert fail_stuck_runs() == 1
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.error == "The worker running it stopped; run it again."
