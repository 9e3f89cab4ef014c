"""The nightly job: snapshots per account, immutable, identical however it is sharded."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import ProgrammingError, transaction

from forecasting.models import AccountForecast, ForecastPoint, ForecastRun
from forecasting.services import run_forecasts
from tests.forecasting.synthetic import series

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 4, 30)
START = AS_OF - dt.timedelta(days=199)  # 200 days of history up to AS_OF


@pytest.fixture
def company(make_account, spend):
    accounts = {
        "steady": make_account("steady"),
        "growing": make_account("growing"),
        "young": make_account("young"),
        "idle": make_account("idle"),
    }
    spend(accounts["steady"], START, series(200, level=120, noise=5, seed=1))
    spend(accounts["growing"], START, series(200, level=50, slope=1, noise=5, seed=2))
    spend(accounts["young"], AS_OF - dt.timedelta(days=29), series(30, level=40, seed=3))
    return accounts


def snapshot(as_of=AS_OF) -> dict[str, list[tuple]]:
    return {
        f.account.external_id: [(p.day, p.days, p.value, p.lower, p.upper) for p in f.points.order_by("day")]
        for f in AccountForecast.objects.filter(as_of=as_of).select_related("account")
    }


def test_every_account_gets_a_snapshot_of_90_daily_points_then_weekly_sums(company):
    result = run_forecasts(as_of=AS_OF)

    assert (result.accounts, result.skipped) == (4, 0)
    assert result.methods == {"ets": 2, "run_rate": 1, "none": 1}
    methods = dict(AccountForecast.objects.values_list("account__external_id", "method"))
    assert methods == {"steady": "ets", "growing": "ets", "young": "run_rate", "idle": "none"}
    points = snapshot()["steady"]
    # 90 daily points (May 1 … Jul 29), then 40 buckets from day 91; the last covers days 364–365.
    assert len(points) == 130
    assert points[0][:2] == (dt.date(2026, 5, 1), 1)
    assert points[89][:2] == (dt.date(2026, 7, 29), 1)
    assert points[90][:2] == (dt.date(2026, 7, 30), 7)
    assert points[-1][:2] == (AS_OF + dt.timedelta(days=364), 2)
    assert snapshot()["idle"] == []
    run = ForecastRun.objects.get()
    assert (run.accounts, run.finished_at is not None) == (4, True)


def test_a_snapshot_never_changes_after_later_data_arrives(company, spend):
    run_forecasts(as_of=AS_OF)
    before = snapshot()

    # A late correction inside the history and a month of new usage arrive; the same day runs again.
    spend(company["idle"], AS_OF - dt.timedelta(days=99), series(130, level=500, seed=9))
    result = run_forecasts(as_of=AS_OF)

    assert (result.accounts, result.skipped) == (0, 4)
    assert snapshot() == before
    assert ForecastPoint.objects.count() == 3 * 130 - 0  # steady, growing, young; idle stays "none"


def test_the_database_refuses_to_change_or_delete_a_snapshot(company):
    run_forecasts(as_of=AS_OF)
    point = ForecastPoint.objects.first()

    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        ForecastPoint.objects.filter(pk=point.pk).update(value=Decimal("1.00"))
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        point.delete()
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        AccountForecast.objects.filter(pk=point.forecast_id).update(method="cohort")


def test_one_run_and_two_shards_write_the_same_numbers(company):
    with transaction.atomic():
        run_forecasts(as_of=AS_OF)
        whole = snapshot()
        transaction.set_rollback(True)
    assert not AccountForecast.objects.exists()

    for shard in (0, 1):
        run_forecasts(as_of=AS_OF, shard=shard, shards=2)

    assert snapshot() == whole
    assert ForecastRun.objects.filter(shards=2).count() == 2


def test_the_command_runs_inline_and_reports(company, capsys):
    call_command("run_forecasts", "--as-of", "2026-04-30", "--shards", "2")

    out = capsys.readouterr().out
    assert "2026-04-30 shard 0/2" in out and "2026-04-30 shard 1/2" in out
    assert AccountForecast.objects.filter(as_of=AS_OF).count() == 4


def test_the_nightly_task_fans_out_one_subtask_per_shard(company, monkeypatch):
    from forecasting import tasks

    sent = []
    # The broker is not under test: run each enqueued shard inline, as a worker would.
    monkeypatch.setattr(
        tasks.run_forecast_shard, "apply_async", lambda args, **kw: sent.append(args) or tasks.run_forecast_shard(*args)
    )

    tasks.run_forecasts_nightly("2026-04-30", shards=3)

    assert sent == [("2026-04-30", 0, 3), ("2026-04-30", 1, 3), ("2026-04-30", 2, 3)]
    assert AccountForecast.objects.filter(as_of=AS_OF).count() == 4
    assert sorted(ForecastRun.objects.values_list("shard", flat=True)) == [0, 1, 2]


def test_a_shard_outside_the_range_is_refused(company):
    from forecasting.services import ForecastError

    with pytest.raises(ForecastError, match=r"shard must be in 0\.\.1"):
        run_forecasts(as_of=AS_OF, shard=2, shards=2)
    assert not ForecastRun.objects.exists()
