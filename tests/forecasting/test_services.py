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


# --- Cohort fallback ------------------------------------------------------------------------


def land(acct, signed_on: dt.date, arr: str = "12000") -> None:
    from accounts.models import Contract, PricingModel

    Contract.objects.create(
        external_id=f"land-{acct.external_id}",
        account=acct,
        pricing_model=PricingModel.COMMIT,
        signed_on=signed_on,
        start_on=signed_on,
        end_on=signed_on + dt.timedelta(days=364),
        committed_arr=Decimal(arr),
    )


@pytest.fixture
def smb_ramp(make_account, spend):
    """Three SMB lands signed 2026-01-01 at $12,000 ARR ($1,000 a month) consuming $500, $750, $1,000 and
    $1,000 in their months 1–4: the SMB curve doubles from month 1 to month 3 (normalized .5 .75 1 1)."""
    from accounts.models import Segment

    for k in range(3):
        acct = make_account(f"cohort-{k}", segment=Segment.SMB)
        land(acct, dt.date(2026, 1, 1))
        for month, amount in ((1, "500"), (2, "750"), (3, "1000"), (4, "1000")):
            spend(acct, dt.date(2026, month, 1), [Decimal(amount)])


def daily_values(as_of=AS_OF) -> dict[str, dict[int, Decimal]]:
    """Per account, the stored daily points by offset (1 = the day after as-of)."""
    return {
        external_id: {(day - as_of).days: value for day, days, value, _low, _high in points if days == 1}
        for external_id, points in snapshot(as_of).items()
    }


def test_a_young_account_follows_its_segments_cohort_curve(smb_ramp, make_account, spend):
    from accounts.models import Segment

    young = make_account("young-smb", segment=Segment.SMB)
    land(young, AS_OF - dt.timedelta(days=20))  # signed 2026-04-10: April is its month 1
    spend(young, AS_OF - dt.timedelta(days=20), [Decimal(100)] * 21)  # 3 weeks of usage
    mid = make_account("young-mm", segment=Segment.MID_MARKET)  # no mid-market cohort
    land(mid, AS_OF - dt.timedelta(days=20))
    spend(mid, AS_OF - dt.timedelta(days=20), [Decimal(100)] * 21)
    unsigned = make_account("young-unsigned", segment=Segment.SMB)  # no land: no place on the curve
    spend(unsigned, AS_OF - dt.timedelta(days=20), [Decimal(100)] * 21)

    result = run_forecasts(as_of=AS_OF)

    methods = dict(AccountForecast.objects.values_list("account__external_id", "method"))
    assert (methods["young-smb"], methods["young-mm"], methods["young-unsigned"]) == ("cohort", "run_rate", "run_rate")
    assert result.methods["cohort"] == 1
    values = daily_values()
    # As of April 30 (the last day of its month 1): May (month 2) at × 1.5, then × 2 from day 31 on, flat.
    assert (values["young-smb"][1], values["young-smb"][30]) == (150, 150)
    assert (values["young-smb"][31], values["young-smb"][90]) == (200, 200)
    assert set(values["young-mm"].values()) == set(values["young-unsigned"].values()) == {Decimal("100.00")}
    components = AccountForecast.objects.get(account=young).components
    assert components["cohort_curve"] == [0.5, 0.75, 1.0, 1.0]
    assert (components["cohort_month"], components["cohort_day"]) == (1, 29)


def test_a_backdated_run_uses_the_cohort_curve_as_it_was_that_day(smb_ramp, make_account, spend):
    from accounts.models import Segment

    young = make_account("young-smb", segment=Segment.SMB)
    land(young, dt.date(2026, 3, 1))
    spend(young, dt.date(2026, 3, 1), [Decimal(100)] * 61)  # from March 1 to April 30
    as_of = dt.date(2026, 3, 20)  # 20 days old; only January and February are complete months

    run_forecasts(as_of=as_of)

    forecast = AccountForecast.objects.get(account=young, as_of=as_of)
    assert forecast.method == "cohort"
    assert forecast.components["cohort_curve"] == [0.5, 0.75]
    values = daily_values(as_of)["young-smb"]
    # Month 2 starts 30 days after March 1 (offset 11); March's growth to 1.0 is not known yet.
    assert (values[1], values[10], values[11], values[90]) == (100, 100, 150, 150)


def test_each_snapshot_stores_its_horizon_totals_with_the_interval_of_the_total(company):
    run_forecasts(as_of=AS_OF)
    for forecast in AccountForecast.objects.filter(as_of=AS_OF).select_related("account"):
        points = list(forecast.points.order_by("day"))
        daily = points[:90]
        assert forecast.next_90 == sum((p.value for p in daily), Decimal(0))
        assert forecast.next_365 == sum((p.value for p in points), Decimal(0))
        for h in (90, 180, 365):
            value, lower, upper = (getattr(forecast, f"next_{h}{s}") for s in ("", "_lower", "_upper"))
            assert lower <= value <= upper
        if forecast.method == "ets":
            # Errors of different days partly cancel: narrower than the sum of the daily bounds.
            assert forecast.next_90_upper < sum((p.upper for p in daily), Decimal(0))
            assert forecast.next_90_lower > sum((p.lower for p in daily), Decimal(0))
    idle = AccountForecast.objects.get(account__external_id="idle", as_of=AS_OF)
    assert (idle.next_365, idle.next_365_upper, idle.naive_daily) == (0, 0, 0)
    steady = AccountForecast.objects.get(account__external_id="steady", as_of=AS_OF)
    assert steady.naive_daily == Decimal(steady.components["naive_daily"]).quantize(Decimal("0.01"))


@pytest.mark.django_db(transaction=True)
def test_two_forked_processes_store_what_one_process_does(company):
    from django.db import connection

    from forecasting.services import run_forecasts_parallel

    ran_meanwhile = []
    result = run_forecasts_parallel(as_of=AS_OF, processes=2, meanwhile=lambda: ran_meanwhile.append(True))
    assert (result.accounts, result.skipped, ran_meanwhile) == (4, 0, [True])
    assert ForecastRun.objects.filter(as_of=AS_OF).count() == 2  # one run per shard
    parallel = snapshot()
    totals = dict(AccountForecast.objects.values_list("account__external_id", "next_365_upper"))
    with connection.cursor() as cursor:  # snapshots refuse DELETE; start over for the comparison
        cursor.execute("TRUNCATE forecasting_forecastpoint, forecasting_accountforecast, forecasting_forecastrun")
    run_forecasts(as_of=AS_OF)
    assert snapshot() == parallel
    assert dict(AccountForecast.objects.values_list("account__external_id", "next_365_upper")) == totals


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_meets_another_writers_snapshot_keeps_it_and_writes_the_rest(company):
    """Shards write at once (no lock between them); the unique (account, day) is the guard.
    A writer that finds an account stored meanwhile by another (still uncommitted when it
    looked) waits, fails on the constraint, and writes its batch again without it."""
    import threading

    from forecasting import engine, services

    ids = {name: account.pk for name, account in company.items()}
    history = services.history_for(list(ids.values()), as_of=AS_OF)
    prepared = {
        pk: services._prepare(engine.forecast_account_series(values, horizon=services.HORIZON), as_of=AS_OF)
        for pk, values in history.items()
    }
    first_holds = threading.Event()
    release = threading.Event()
    outcome = {}

    def first_writer():
        try:
            with transaction.atomic():
                outcome["first"] = services._write_new({ids["steady"]: prepared[ids["steady"]]}, as_of=AS_OF)
                first_holds.set()  # stored, not yet committed
                release.wait(10)
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert first_holds.wait(10)
    # Looks before the first commits: sees nothing stored, inserts, waits on the first's row.
    timer = threading.Timer(0.5, release.set)
    timer.start()
    outcome["second"] = services._write(
        {ids["steady"]: prepared[ids["steady"]], ids["growing"]: prepared[ids["growing"]]}, as_of=AS_OF
    )
    thread.join(10)
    timer.cancel()

    assert outcome == {"first": 1, "second": 1}
    stored = sorted(AccountForecast.objects.filter(as_of=AS_OF).values_list("account__external_id", flat=True))
    assert stored == ["growing", "steady"]
    assert ForecastPoint.objects.filter(forecast__account__external_id="steady").count() == 130
