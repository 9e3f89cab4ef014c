"""Attribution of usage to a product release: adopters against matched comparison accounts,
each account's relative change, a weighted Student t interval and a plain verdict."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import pytest

from accounts.models import Segment
from reviews.attribution import (
    MIN_MATCHED,
    AccountChange,
    match,
    release_attribution,
    release_meters,
    t_interval,
)
from usage.models import DailyRollup, Meter, ProductRelease

from .conftest import RELEASED_ON

D = Decimal
CENT = D("0.01")
Q4 = D("0.0001")
PRE_START = RELEASED_ON - dt.timedelta(days=28)
WEEK_BEFORE = RELEASED_ON - dt.timedelta(days=7)


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


def test_recovers_a_known_relative_uplift(make_account, daily, base_meter, release_meter, release):
    _synthetic(make_account, daily, base_meter, release_meter, uplift=D(50), seed=7)

    result = release_attribution(release)

    assert (len(result.adopters), len(result.matched), result.pool) == (20, 20, 30)
    assert result.meters == ("agent-runs",) and result.meter_names == ("Agent runs",)
    # $50 a day on each adopter's own level, weighted by that level: 50 ÷ their mean level.
    truth = 50 / result.adopters_pre_mean
    assert D("0.15") < truth < D("0.35")
    assert abs(result.estimate - truth) < D("0.05")
    assert result.interval.covers(truth) and not result.interval.covers(0)
    assert result.detectable is True
    assert result.verdict.startswith("+") and "(90% CI +" in result.verdict
    assert result.caveats == ()


def test_no_uplift_is_no_detectable_effect(make_account, daily, base_meter, release_meter, release):
    _synthetic(make_account, daily, base_meter, release_meter, uplift=D(0), seed=11)

    result = release_attribution(release)

    assert result.interval.covers(0)
    assert abs(result.estimate) < D("0.05")
    assert result.detectable is False
    assert result.verdict.startswith("No detectable effect (90% CI −")


def test_hand_worked_effect_interval_and_verdict(hand_worked):
    result = release_attribution(hand_worked, window_days=7)

    # Adopters +10% … +50%; each adopter's five matches together 520 ÷ 500 − 1 = +4%.
    assert [m.adopter.relative_change for m in result.matches] == [D("0.1"), D("0.2"), D("0.3"), D("0.4"), D("0.5")]
    assert {m.comparison_change for m in result.matches} == {D("0.04")}
    assert [len(m.comparisons) for m in result.matches] == [5] * 5
    assert (result.adopters_change, result.comparison_change) == (D("0.3"), D("0.04"))
    # Effects +6 … +46 points, equal weights ($100 a day each): mean 0.26.
    assert result.estimate == D("0.26")
    # SE² = 5/4 × 100²·(0.2² + 0.1² + 0 + 0.1² + 0.2²) ÷ 500² = 0.005: SE 0.0707, t(0.95, 4) 2.1318.
    interval = result.interval
    assert interval.standard_error.quantize(Q4) == D("0.0707")
    assert (interval.degrees_of_freedom, interval.quantile) == (4, D("2.1318"))
    assert (interval.low.quantize(Q4), interval.high.quantize(Q4)) == (D("0.1093"), D("0.4107"))
    assert result.verdict == "+26.0% (90% CI +10.9% to +41.1%)."
    assert [a.first_used_on for a in result.adopters] == [RELEASED_ON] * 5
    # The chart: revenue ÷ the level before; adopters 500 → 650 a day, their matches 500 → 520.
    assert [(p.offset, p.adopters, p.comparison) for p in (result.series[0], result.series[-1])] == [
        (-7, D(1), D(1)),
        (6, D("1.3"), D("1.04")),
    ]


def test_tiny_adopters_are_compared_with_accounts_of_their_size_not_with_big_ones(
    make_account, daily, base_meter, release_meter, release
):
    """Issue #15: six SMB adopters at $10 a day more than double (+125% … +165%, mean +145%)
    while 187 SMB non-adopters twenty times larger ($200 → $221 a day) grow $21 a day. The
    dollar difference said adopting *cost* 14.50 − (187 × 21 + 6.5) ÷ 193 = −$5.88 a day.
    Matched on size (½× to 2× of $10 a day), each adopter gets the five nearest of six small
    non-adopters ($8, 9, 10, 11, 12; not 15), which grow +10% together. Effects +115 … +155
    points, mean +135; s² = 0.02, SE = √(0.02 ÷ 6) = 0.0577, t(0.95, 5) = 2.0150."""
    rows = []
    for k, extra in enumerate(("12.5", "13.5", "14.5", "14.5", "15.5", "16.5"), start=1):
        account = make_account(f"tiny-{k}", segment=Segment.SMB)
        rows += daily(account, base_meter, WEEK_BEFORE, [10] * 14, save=False)
        rows += daily(account, release_meter, RELEASED_ON, [extra] * 7, save=False)
    for k, size in enumerate((8, 9, 10, 11, 12, 15), start=1):
        account = make_account(f"small-{k}", segment=Segment.SMB)
        rows += daily(account, base_meter, WEEK_BEFORE, [size] * 7 + [D(size) * D("1.1")] * 7, save=False)
    for k in range(187):
        account = make_account(f"big-{k:03d}", segment=Segment.SMB)
        rows += daily(account, base_meter, WEEK_BEFORE, [200] * 7 + [221] * 7, save=False)
    DailyRollup.objects.bulk_create(rows)

    result = release_attribution(release, window_days=7)

    assert (len(result.adopters), len(result.matched), result.pool) == (6, 6, 193)
    assert [c.external_id for c in result.comparison_accounts] == [f"small-{k}" for k in range(1, 6)]
    assert result.adopters_change.quantize(Q4) == D("1.4500")
    assert result.comparison_change == D("0.1")
    assert result.estimate == D("1.35")
    assert result.interval.standard_error.quantize(Q4) == D("0.0577")
    assert result.interval.quantile == D("2.0150")
    assert result.verdict == "+135.0% (90% CI +123.4% to +146.6%)."


def test_too_few_matched_adopters_is_too_few_to_judge(hand_worked):
    DailyRollup.objects.filter(account__external_id="a5").delete()

    result = release_attribution(hand_worked, window_days=7)

    assert len(result.matched) == MIN_MATCHED - 1
    assert result.interval is None and result.estimate is None and result.detectable is None
    assert result.verdict == (
        "Too few to judge: 4 matched adopters and 5 comparison accounts (at least 5 of each needed)."
    )
    assert "Too few matched adopters to judge (4; at least 5 needed)." in result.caveats
    assert result.adopters_change == D("0.25")


def test_an_adopter_without_an_account_of_its_segment_and_size_is_left_out(
    hand_worked, make_account, daily, base_meter, release_meter
):
    # An enterprise adopter: no enterprise account in the pool. A mid-market giant: none within ×2.
    big = make_account("big-adopter", segment=Segment.ENTERPRISE)
    daily(big, base_meter, WEEK_BEFORE, [100] * 14)
    daily(big, release_meter, RELEASED_ON, [900] * 7)
    giant = make_account("giant")
    daily(giant, base_meter, WEEK_BEFORE, [201] * 14)
    daily(giant, release_meter, RELEASED_ON, [1] * 7)

    result = release_attribution(hand_worked, window_days=7)

    assert (len(result.adopters), len(result.matched), result.unmatched) == (7, 5, 2)
    assert result.estimate == D("0.26")
    assert (
        "2 of 7 adopters had no comparison account of their segment within a factor of 2 of their size: "
        "left out of the estimate." in result.caveats
    )


def test_prior_users_new_and_onboarding_accounts_are_left_out(
    hand_worked, make_account, daily, base_meter, release_meter
):
    # Used the release meter during the window before (a beta user): neither group.
    beta = make_account("beta")
    daily(beta, base_meter, WEEK_BEFORE, [100] * 14)
    daily(beta, release_meter, RELEASED_ON - dt.timedelta(days=3), [500] * 10)
    # First usage of anything after the release, straight on the release meter: no "before".
    newcomer = make_account("newcomer")
    daily(newcomer, release_meter, RELEASED_ON + dt.timedelta(days=2), [80] * 5)
    # Started on the window's 4th day (onboarding): an adopter left out, a non-adopter not compared.
    onboarding = make_account("onboarding")
    daily(onboarding, base_meter, WEEK_BEFORE + dt.timedelta(days=3), [100] * 11)
    daily(onboarding, release_meter, RELEASED_ON, [100] * 7)
    daily(make_account("onboarding-2"), base_meter, WEEK_BEFORE + dt.timedelta(days=3), [100] * 11)
    # Adopts after the window after ends: in the pool (the same size as N1–N5, matched after them by id).
    slow = make_account("slow")
    daily(slow, base_meter, WEEK_BEFORE, [100] * 14)
    daily(slow, release_meter, RELEASED_ON + dt.timedelta(days=7), [40] * 3)

    result = release_attribution(hand_worked, window_days=7)

    assert result.excluded_prior_users == 1
    assert result.excluded_new_adopters == 2
    assert [a.external_id for a in result.adopters] == ["a1", "a2", "a3", "a4", "a5"]
    assert result.pool == 6
    assert [c.external_id for c in result.comparison_accounts] == ["n1", "n2", "n3", "n4", "n5"]
    assert result.estimate == D("0.26")
    assert "accounts that used the meters before the release are left out" in result.method


def test_segment_filter_restricts_both_groups(hand_worked, make_account, daily, base_meter):
    smb = make_account("smb-1", segment=Segment.SMB)
    daily(smb, base_meter, WEEK_BEFORE, [10] * 14)

    everyone = release_attribution(hand_worked, window_days=7)
    mid_market = release_attribution(hand_worked, window_days=7, segment=Segment.MID_MARKET)
    smb_only = release_attribution(hand_worked, window_days=7, segment=Segment.SMB)

    assert everyone.pool == 6 and everyone.estimate == D("0.26")  # smb-1 is never a mid-market match
    assert mid_market.pool == 5 and mid_market.estimate == D("0.26")
    assert (len(smb_only.adopters), smb_only.pool) == (0, 1)
    assert smb_only.verdict.startswith("Too few to judge: 0 matched adopters and 0 comparison accounts")
    assert "Mid-market accounts need revenue" in mid_market.method


def test_post_window_without_full_data_uses_the_days_so_far(make_account, daily, base_meter, release_meter, release):
    # Data only to the 4th day after the release: the mean after is over those 4 days.
    account = make_account("a")
    daily(account, base_meter, PRE_START, [70] * 28 + [90] * 4)
    daily(account, release_meter, RELEASED_ON, [10] * 4)

    result = release_attribution(release)

    assert result.post_days == 4
    assert result.adopters[0].post_mean == D(100)
    assert any("only 4 of the 28 days" in c for c in result.caveats)


def test_release_meters_are_its_own_plus_those_of_its_features(release, base_meter, release_meter):
    other = Meter.objects.create(key="gb", name="GB", unit="GB")
    release.meters.add(other)
    assert [m.key for m in release_meters(release)] == ["agent-runs", "gb"]
    bare = ProductRelease.objects.create(released_on=RELEASED_ON, name="Docs refresh")
    result = release_attribution(bare)
    assert result.meters == () and result.interval is None
    assert "nothing to attribute" in result.caveats[0]
    assert result.verdict == "Nothing to attribute: the release names no meters."


@pytest.mark.parametrize("window", [6, 91])
def test_window_out_of_range_is_refused(release, window):
    with pytest.raises(ValueError, match="7 to 90 days"):
        release_attribution(release, window_days=window)


def test_as_dict_is_json_safe_evidence(hand_worked):
    evidence = release_attribution(hand_worked, window_days=7).as_dict()

    assert json.loads(json.dumps(evidence)) == evidence
    assert evidence["version"] == 2
    assert (evidence["effect"], evidence["ci_low"], evidence["ci_high"]) == ("0.2600", "0.1093", "0.4107")
    assert evidence["verdict"] == "+26.0% (90% CI +10.9% to +41.1%)."
    assert evidence["detectable"] is True
    assert evidence["adopters"] == {
        "n": 5,
        "matched": 5,
        "unmatched": 0,
        "pre_mean_per_day": "100.00",
        "post_mean_per_day": "130.00",
        "relative_change": "0.3000",
        "accounts": ["a1", "a2", "a3", "a4", "a5"],
    }
    assert evidence["comparison"] == {
        "pool": 5,
        "n": 5,
        "pre_mean_per_day": "100.00",
        "post_mean_per_day": "104.00",
        "relative_change": "0.0400",
        "accounts": ["n1", "n2", "n3", "n4", "n5"],
    }
    assert evidence["pre_window"] == ["2026-02-22", "2026-02-28"]
    assert evidence["post_window"] == ["2026-03-01", "2026-03-07"]
    assert evidence["meters"] == ["agent-runs"] and evidence["meter_names"] == ["Agent runs"]
    assert evidence["method"].startswith("Adopters against matched comparison accounts")
    assert len(evidence["series"]) == 14
    assert evidence["series"][-1] == {"offset": 6, "day": "2026-03-07", "adopters": "1.3000", "comparison": "1.0400"}


def test_attribution_reads_in_three_queries_whatever_the_accounts(hand_worked, django_assert_num_queries):
    # The meters, every account's windows, the matched accounts' daily revenue.
    with django_assert_num_queries(3):
        release_attribution(hand_worked, window_days=7)


def _account(pk: int, size: str, segment: str = Segment.SMB) -> AccountChange:
    return AccountChange(pk, f"x{pk}", f"X{pk:02d}", segment, None, D(size), D(size))


def test_matching_takes_the_nearest_five_of_the_segment_within_a_factor_of_two():
    adopter = _account(1, "10")
    pool = [
        _account(2, "4.99"),  # under ½×
        _account(3, "5"),  # ½×: in the band, ratio 2
        _account(4, "20"),  # 2×: in the band, ratio 2 (a tie with 3: the lower id wins)
        _account(5, "20.01"),  # over 2×
        _account(6, "10", Segment.MID_MARKET),  # another segment
        _account(7, "12"),  # ratio 1.2
        _account(8, "8"),  # 1.25
        _account(9, "9"),  # 1.11
        _account(10, "15"),  # 1.5
    ]

    (result,) = match([adopter], pool)

    # The nearest five by larger ÷ smaller: 9 (1.11), 12, 8, 15, then 5 over 20 (both 2: lower id); by name.
    assert [c.account_id for c in result.comparisons] == [3, 7, 8, 9, 10]
    assert match([_account(11, "100")], pool)[0].comparisons == ()


def test_weighted_t_interval_by_hand():
    # ē = (1·0.1 + 3·0.3) ÷ 4 = 0.25; SE² = 2/1 × (1·0.15² + 9·0.05²) ÷ 16 = 0.005625: SE 0.075.
    interval = t_interval([D("0.1"), D("0.3")], [D(1), D(3)])
    assert (interval.estimate, interval.standard_error) == (D("0.25"), D("0.075"))
    assert (interval.degrees_of_freedom, interval.quantile) == (1, D("6.3138"))
    assert interval.low == D("0.25") - D("6.3138") * D("0.075")
    # Equal weights: the textbook s ÷ √n (s² = 0.01 over 0.1, 0.2, 0.3: SE = 0.0577).
    equal = t_interval([D("0.1"), D("0.2"), D("0.3")])
    assert equal.estimate == D("0.2") and equal.standard_error.quantize(Q4) == D("0.0577")
    assert t_interval([D(1)]) is None
    same = t_interval([D("0.5"), D("0.5")])
    assert (same.low, same.high, same.standard_error) == (D("0.5"), D("0.5"), D(0))


def test_an_attribution_is_cached_until_rollups_change(db):
    """The product page shows five attributions; each is computed once, then read from the
    cache until a rollup write (any fold or re-price) bumps the rollups version."""
    import datetime as dt

    from django.core.cache import cache

    from reviews.attribution import cached_release_attribution
    from usage.ingestion.rollups import ROLLUPS_VERSION_KEY, _bump_rollups_version, rollups_version
    from usage.models import ProductRelease

    release = ProductRelease.objects.create(released_on=dt.date(2026, 6, 1), name="Batch v2")
    cache.delete(ROLLUPS_VERSION_KEY)
    first = cached_release_attribution(release)
    before = rollups_version()

    again = cached_release_attribution(release)
    _bump_rollups_version()

    assert again.as_dict() == first.as_dict()
    assert rollups_version() == before + 1
    key_prefix = f"reviews:attribution:v2:{release.pk}:"
    assert cache.get(f"{key_prefix}2026-06-01:::28::{before}") is not None
