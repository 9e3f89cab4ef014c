"""Scoring snapshots against actuals, and the backtest replay."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts.models import Contract, PricingModel
from forecasting.accuracy import backtest, fixed_pairs, score, snapshot_accuracy
from forecasting.services import run_forecasts
from tests.forecasting.synthetic import series

D = dt.date
AS_OF = D(2026, 4, 30)


def test_wape_and_bias_are_worked_out_on_totals():
    # |100 − 80| + |50 − 60| = 30 over 150 actual: WAPE 0.2000; (80 − 100) + (60 − 50) = −10: bias −0.0667.
    result = score([(Decimal(80), Decimal(100)), (Decimal(60), Decimal(50))])

    assert (result.wape, result.bias) == (Decimal("0.2000"), Decimal("-0.0667"))
    assert score([]).wape is None


@pytest.mark.django_db
def test_stored_snapshots_are_scored_once_their_horizon_has_arrived(make_account, spend):
    acct = make_account("young")
    # 30 days at 40 up to AS_OF: run-rate method, forecast 40.00 a day; naive also 40 a day.
    spend(acct, AS_OF - dt.timedelta(days=29), [Decimal(40)] * 30)
    run_forecasts(as_of=AS_OF)
    # Then 10 days at 50 arrive. 7 days: forecast 280 vs actual 350 → WAPE 70/350 = 0.2, bias −0.2.
    spend(acct, AS_OF + dt.timedelta(days=1), [Decimal(50)] * 10)

    week = snapshot_accuracy(horizon=7)
    month = snapshot_accuracy(horizon=30)

    assert (week.model.wape, week.model.bias, week.snapshots) == (Decimal("0.2000"), Decimal("-0.2000"), 1)
    assert (week.naive.wape, week.naive.bias) == (Decimal("0.2000"), Decimal("-0.2000"))
    assert month.snapshots == 0  # only 10 of its 30 days have arrived


@pytest.fixture
def trending_company(make_account, spend):
    """Five accounts growing about 1 a day from ~150 with noise, 2025-07-01 … 2026-04-30 (304 days)."""
    first = D(2025, 7, 1)
    for k in range(5):
        spend(make_account(f"grow{k}"), first, series(304, level=150 + 20 * k, slope=1.0, noise=6, seed=k))


@pytest.mark.django_db
def test_on_a_trend_the_model_beats_the_naive_run_rate_at_thirty_days(trending_company):
    # As of Feb 28, Mar 7 and Mar 14: the naive rate lags the trend by ~15 days and under-forecasts
    # the next 30 by ~31/day (≈ 10%); the damped-trend model follows it.
    rows = {r.horizon: r for r in backtest(first=D(2026, 2, 28), last=D(2026, 3, 14), every=7, horizons=(30,))}

    month = rows[30]
    assert month.snapshots == 15
    assert month.model.wape < month.naive.wape
    assert month.naive.bias < Decimal("-0.05")
    assert month.model.wape < Decimal("0.05")


@pytest.mark.django_db
def test_the_backtest_command_prints_a_table_by_horizon(trending_company):
    from io import StringIO

    out = StringIO()
    call_command("backtest_forecasts", "--from", "2026-01-15", "--to", "2026-01-29", "--every", "14", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "Backtest 2026-01-15 … 2026-01-29 every 14 days (variable = usage revenue):"
    assert lines[1].split() == [
        "horizon",
        "pairs",
        "model",
        "WAPE",
        "naive",
        "WAPE",
        "model",
        "bias",
        "naive",
        "bias",
        "fixed",
        "WAPE",
    ]
    assert [line.split()[:2] for line in lines[2:]] == [["7d", "10"], ["30d", "10"], ["90d", "10"]]


@pytest.mark.django_db
def test_fixed_revenue_is_the_contracted_schedule_known_on_the_day(make_account):
    acct = make_account("hybrid")
    common = {"account": acct, "pricing_model": PricingModel.HYBRID, "end_on": D(2026, 12, 31)}
    Contract.objects.create(
        external_id="h1", signed_on=D(2026, 1, 1), start_on=D(2026, 1, 1), base_fee=Decimal("365"), **common
    )
    # Signed after the as-of day: the forecast could not know it.
    Contract.objects.create(
        external_id="h2", signed_on=D(2026, 5, 10), start_on=D(2026, 5, 11), base_fee=Decimal("730"), **common
    )

    # May 1–30: h1 accrues 365 × 12 / 365 = 12 a day → 360 forecast; h2 adds 24 a day × 20 days = 480.
    assert fixed_pairs([acct.pk], as_of=AS_OF, horizon=30) == [(Decimal(360), Decimal(840))]


@pytest.mark.django_db
def test_the_accuracy_panel_is_kept_until_late_usage_arrives(make_account, make_user, spend):
    import re

    from django.core.cache import cache
    from django.test import Client

    from revops.models import Role

    acct = make_account("young")
    spend(acct, AS_OF - dt.timedelta(days=29), [Decimal(40)] * 30)
    run_forecasts(as_of=AS_OF)
    spend(acct, AS_OF + dt.timedelta(days=1), [Decimal(50)] * 10)
    cache.clear()
    client = Client()
    client.force_login(make_user(Role.LEADER))

    def seven_days() -> str:
        body = client.get("/forecasts/accuracy/?scope=company").content.decode()
        row = re.search(r"<tr>\s*<td>7 days</td>(.*?)</tr>", body, re.S)
        return " ".join(re.sub(r"<[^>]+>", " ", row.group(1)).split())

    assert seven_days() == "1 20.0% 20.0% −20.0% −20.0%"  # 280 forecast vs 350 actual
    assert seven_days() == "1 20.0% 20.0% −20.0% −20.0%"  # kept
    # A late correction of the first day (+70): 280 vs 420 → WAPE 140/420 = 33.3 %.
    from usage.models import DailyRollup

    DailyRollup.objects.filter(account=acct, day=AS_OF + dt.timedelta(days=1)).update(revenue=Decimal(120))
    assert seven_days() == "1 33.3% 33.3% −33.3% −33.3%"
