"""The daily task queues what each daily target is due, once; a redelivered run does nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from exports.models import ExportRun, RunState, Schedule
from exports.services import run_execute, schedule_daily_exports, target_create
from tests.exports.conftest import D

pytestmark = pytest.mark.django_db


def test_the_daily_task_queues_yesterday_for_daily_targets_only(world, tmp_path):
    daily = target_create(name="Daily", url=f"file://{tmp_path / 'a'}", formats=["csv"], tables=["rollups"])
    target_create(
        name="Manual", url=f"file://{tmp_path / 'b'}", formats=["csv"], tables=["rollups"], schedule=Schedule.MANUAL
    )

    runs = schedule_daily_exports(today=D + dt.timedelta(days=1))

    assert [(r.target_id, r.plan, r.reason) for r in runs] == [
        (daily.pk, {"rollups": ["2026-04-29"]}, "daily: new days and changed days")
    ]


def test_a_target_with_a_run_in_progress_gets_no_second_one(world, tmp_path):
    target_create(name="Daily", url=f"file://{tmp_path}", formats=["csv"], tables=["rollups"])
    schedule_daily_exports(today=D + dt.timedelta(days=1))

    again = schedule_daily_exports(today=D + dt.timedelta(days=1))

    assert again == [] and ExportRun.objects.count() == 1


def test_after_the_run_nothing_is_due_until_a_new_day_or_a_change(world, tmp_path):
    target_create(name="Daily", url=f"file://{tmp_path}", formats=["csv"], tables=["rollups"])
    (run,) = schedule_daily_exports(today=D + dt.timedelta(days=1))
    run_execute(run.pk)

    assert schedule_daily_exports(today=D + dt.timedelta(days=1)) == []
    (later,) = schedule_daily_exports(today=D + dt.timedelta(days=2))
    assert later.plan == {"rollups": ["2026-04-30"]}


def test_a_run_already_claimed_is_not_run_twice(world, tmp_path):
    target = target_create(name="Daily", url=f"file://{tmp_path}", formats=["csv"], tables=["rollups"])
    run = ExportRun.objects.create(target=target, plan={"rollups": [D.isoformat()]})

    assert run_execute(run.pk).state == RunState.SUCCEEDED
    assert run_execute(run.pk) is None


def test_a_run_stuck_for_hours_is_failed_by_the_daily_task(world, tmp_path):
    target = target_create(name="Daily", url=f"file://{tmp_path}", formats=["csv"], tables=["rollups"])
    stuck = ExportRun.objects.create(target=target, plan={}, state=RunState.RUNNING)
    ExportRun.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - dt.timedelta(hours=4))

    schedule_daily_exports(today=D + dt.timedelta(days=1))

    stuck.refresh_from_db()
    assert stuck.state == RunState.FAILED and "did not finish within 3 hours" in stuck.error
