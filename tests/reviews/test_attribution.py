"""Attribution of usage to a product release: adopters vs non-adopters, difference in differences."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import pytest

from accounts.models import Segment
from reviews.attribution import (
    MIN_GROUP,
    release_attribution,
    release_meters,
    welch_interval,
)
from usage.models import DailyRollup, Meter, ProductRelease

from .conftest import RELEASED_ON

D = Decimal
CENT = D("0.01")
PRE_START = RELEASED_ON - dt.timedelta(days=28)


def _synthetic(make_account, daily, base_meter, release_meter, *, uplift: Decimal, seed: int) -> None:
    """20 adopters and 30 non-adopters over 28 days each side of the release. Every
    account: its own level ($100–300/day), its own trend (≈ +$0.50/day/day ± 0.20, so the
    windows differ by ≈ $14/day ± 5.6 for everyone) and daily noise (± $10). Adopters
    start the release meter on the release day: it adds ``uplift`` a day to their total
    (shifted from the base meter when the uplift is 0: cannibalization, no growth)."""
    rng = random.Random(seed)
    rows = []
    for i in range(50):
        adopter = i < 20
        account = make_account(f"{'adopter' if adopter else 'other'}-{i:02d}")
        level, slope = rng.uniform(100, 300), rng.gauss(0.5, 0.2)
        base, extra = [], []
        for t in range(56):
            value = D(str(round(max(0.0, level + slope * t + rng.gauss(0, 10)), 2)))
            after = adopter and t >= 28
            # The release meter's $50 a day: added to the total, or taken from the base meter.
            base.append(value - (D(50) - uplift if after else 0))
            extra.append(D(50) if after else D(0))
        rows += daily(account, base_meter, PRE_START, base, save=False)
        rows += daily(account, release_meter, PRE_START, extra, save=False)
    DailyRollup.objects.bulk_create(rows)


def test_recovers_a_known_uplift_of_fifty_dollars_a_day(make_account, daily, base_meter, release_meter, release):
    _synthetic(make_account, daily, base_meter, release_meter, uplift=D(50), seed=7)

    result = release_attribution(release)

    assert (result.adopters.n, result.non_adopters.n) == (20, 30)
    assert result.meters == ("agent-runs",)
    assert abs(result.estimate - 50) < 5
    assert result.interval.covers(50)
    assert not result.interval.covers(0)
    # Adopters' level before is ≈ $200 + 7 of trend: 50 a day is roughly a quarter of it.
    assert D("0.15") < result.estimate_pct < D("0.35")
    assert result.caveats == ()


def test_no_uplift_gives_an_interval_around_zero(make_account, daily, base_meter, release_meter, release):
    _synthetic(make_account, daily, base_meter, release_meter, uplift=D(0), seed=11)

    result = release_attribution(release)

    assert (result.adopters.n, result.non_adopters.n) == (20, 30)
    assert result.interval.covers(0)
    assert abs(result.estimate) < 5


def test_hand_worked_estimate_and_welch_interval(hand_worked):
    result = release_attribution(hand_worked, window_days=7)

    assert result.estimate == D(26)
    assert result.estimate_pct == D("0.26")
    # Variances of the changes: adopters 250 (÷5 = 50); non-adopters 17.5 (÷5 = 3.5).
    # SE = √53.5 = 7.3144; Welch df = 53.5² ÷ (50²/4 + 3.5²/4) = 2862.25 ÷ 628.0625 = 4.5573.
    interval = result.interval
    assert interval.standard_error.quantize(D("0.0001")) == D("7.3144")
    assert interval.degrees_of_freedom.quantize(D("0.0001")) == D("4.5573")
    # t(0.95) lies between its values at 5 (2.0150) and 4 (2.1318) degrees of freedom.
    assert D("2.015") < interval.quantile < D("2.1318")
    assert interval.low == 26 - interval.quantile * interval.standard_error
    assert interval.high == 26 + interval.quantile * interval.standard_error
    assert result.adopters.pre_mean == D(100) and result.adopters.post_mean == D(130)
    assert result.non_adopters.mean_change == D(4)
    assert [a.first_used_on for a in result.adopters.accounts] == [RELEASED_ON] * 5
    # The series: every adopter spends 100 before and 100 + 30 on average after.
    assert [(p.offset, p.adopters, p.non_adopters) for p in (result.series[0], result.series[-1])] == [
        (-7, D(100), D(100)),
        (6, D(130), D(104)),
    ]


def test_users_before_the_release_and_new_accounts_are_excluded(
    hand_worked, make_account, daily, base_meter, release_meter
):
    # Used the release meter during the pre window (a beta user): neither group.
    beta = make_account("beta")
    daily(beta, base_meter, RELEASED_ON - dt.timedelta(days=7), [100] * 14)
    daily(beta, release_meter, RELEASED_ON - dt.timedelta(days=3), [500] * 10)
    # First usage of anything after the release, straight on the release meter: no "before".
    newcomer = make_account("newcomer")
    daily(newcomer, release_meter, RELEASED_ON + dt.timedelta(days=2), [80] * 5)
    # Adopts after the post window ends: a non-adopter within it (change 0).
    slow = make_account("slow")
    daily(slow, base_meter, RELEASED_ON - dt.timedelta(days=7), [100] * 14)
    daily(slow, release_meter, RELEASED_ON + dt.timedelta(days=7), [40] * 3)

    result = release_attribution(hand_worked, window_days=7)

    assert result.excluded_prior_users == 1
    assert result.excluded_new_adopters == 1
    assert [a.external_id for a in result.adopters.accounts] == ["a1", "a2", "a3", "a4", "a5"]
    assert "slow" in [a.external_id for a in result.non_adopters.accounts]
    assert result.non_adopters.n == 6
    # Non-adopters' mean change is now (0+0+5+5+10+0)/6 = 3.33: estimate 26.67.
    assert result.estimate.quantize(CENT) == D("26.67")
    assert "Accounts that used them before the release are excluded" in result.method


def test_too_few_adopters_gives_no_estimate_but_shows_the_groups(hand_worked):
    DailyRollup.objects.filter(account__external_id="a5").delete()

    result = release_attribution(hand_worked, window_days=7)

    assert result.adopters.n == MIN_GROUP - 1
    assert result.interval is None and result.estimate is None
    assert "Not enough adopters to estimate (4; at least 5 needed)." in result.caveats
    assert result.adopters.mean_change == D(25)


def test_segment_filter_restricts_both_groups(hand_worked, make_account, daily, base_meter):
    smb = make_account("smb-1", segment=Segment.SMB)
    daily(smb, base_meter, RELEASED_ON - dt.timedelta(days=7), [10] * 14)

    everyone = release_attribution(hand_worked, window_days=7)
    mid_market = release_attribution(hand_worked, window_days=7, segment=Segment.MID_MARKET)
    smb_only = release_attribution(hand_worked, window_days=7, segment=Segment.SMB)

    assert everyone.non_adopters.n == 6
    assert mid_market.non_adopters.n == 5 and mid_market.estimate == D(26)
    assert (smb_only.adopters.n, smb_only.non_adopters.n) == (0, 1)
    assert "Mid-market accounts with usage" in mid_market.method


def test_post_window_without_full_data_uses_the_days_so_far(make_account, daily, base_meter, release_meter, release):
    # Data only to the 4th day after the release: the post mean is over those 4 days.
    account = make_account("a")
    daily(account, base_meter, RELEASED_ON - dt.timedelta(days=28), [70] * 28 + [90] * 4)
    daily(account, release_meter, RELEASED_ON, [10] * 4)

    result = release_attribution(release)

    assert result.post_days == 4
    assert result.adopters.accounts[0].post_mean == D(100)
    assert any("only 4 of the 28 days" in c for c in result.caveats)


def test_release_meters_are_its_own_plus_those_of_its_features(release, base_meter, release_meter):
    other = Meter.objects.create(key="gb", name="GB", unit="GB")
    release.meters.add(other)
    assert [m.key for m in release_meters(release)] == ["agent-runs", "gb"]
    bare = ProductRelease.objects.create(released_on=RELEASED_ON, name="Docs refresh")
    result = release_attribution(bare)
    assert result.meters == () and result.interval is None
    assert "nothing to attribute" in result.caveats[0]


@pytest.mark.parametrize("window", [6, 91])
def test_window_out_of_range_is_refused(release, window):
    with pytest.raises(ValueError, match="7 to 90 days"):
        release_attribution(release, window_days=window)


def test_as_dict_is_json_safe_evidence(hand_worked):
    evidence = release_attribution(hand_worked, window_days=7).as_dict()

    assert json.loads(json.dumps(evidence)) == evidence
    assert evidence["estimate_per_day"] == "26.00"
    assert evidence["estimate_pct"] == "0.2600"
    assert evidence["adopters"] == {
        "n": 5,
        "pre_mean_per_day": "100.00",
        "post_mean_per_day": "130.00",
        "mean_change_per_day": "30.00",
        "accounts": ["a1", "a2", "a3", "a4", "a5"],
    }
    assert evidence["pre_window"] == ["2026-02-22", "2026-02-28"]
    assert evidence["post_window"] == ["2026-03-01", "2026-03-07"]
    assert evidence["meters"] == ["agent-runs"]
    assert evidence["method"].startswith("Difference in differences")
    assert len(evidence["series"]) == 14


def test_attribution_reads_in_three_queries_whatever_the_accounts(hand_worked, django_assert_num_queries):
    # The meters, every account's windows, the daily series.
    with django_assert_num_queries(3):
        release_attribution(hand_worked, window_days=7)


def test_welch_interval_needs_two_values_a_side():
    assert welch_interval([D(1)], [D(1), D(2)]) is None
    same = welch_interval([D(5), D(5)], [D(2), D(2)])
    assert (same.estimate, same.low, same.high, same.standard_error) == (D(3), D(3), D(3), D(0))
