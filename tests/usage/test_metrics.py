"""The shared metrics (docs/metrics.md), each against a hand-worked example.

Rollups are written directly with exact Decimal revenue (no event ingestion), so every
window sum below can be checked with a calendar and a pencil. 2026 is not a leap year.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from accounts.models import Account, Contract, PricingModel, Segment
from usage.models import DailyRollup, FirstSeen, FirstSeenKind, Meter, MeterTier
from usage.signals.metrics import (
    Inputs,
    Portfolio,
    Thresholds,
    account_inputs,
    account_metrics,
    band_for,
    derive,
    detect_decline,
    gates,
    portfolio,
    portfolio_metrics,
    retention_inputs,
)

D = dt.date
T = Thresholds()
_ids = itertools.count(1)


# --- Fixtures and helpers -----------------------------------------------------------------


def make_account(external_id: str, *, segment: str = Segment.ENTERPRISE, parent: Account | None = None) -> Account:
    return Account.objects.create(external_id=external_id, name=external_id.title(), segment=segment, parent=parent)


def make_contract(
    account: Account,
    start: dt.date,
    end: dt.date,
    committed: str = "0",
    *,
    model: str = PricingModel.COMMIT,
    **extra,
) -> Contract:
    return Contract.objects.create(
        external_id=f"{account.external_id}-c{next(_ids)}",
        account=account,
        pricing_model=model,
        signed_on=start,
        start_on=start,
        end_on=end,
        committed_arr=Decimal(committed),
        **extra,
    )


def spend(account: Account, meter: Meter, first: dt.date, last: dt.date, revenue: str, quantity: str = "1") -> None:
    """One rollup a day from ``first`` to ``last`` inclusive, each with ``revenue``."""
    days = (last - first).days + 1
    DailyRollup.objects.bulk_create(
        DailyRollup(
            account=account,
            meter=meter,
            day=first + dt.timedelta(days=k),
            quantity=Decimal(quantity),
            revenue=Decimal(revenue),
            event_count=1,
        )
        for k in range(days)
    )


def on(account: Account, meter: Meter, day: dt.date, revenue: str, quantity: str = "1") -> None:
    spend(account, meter, day, day, revenue, quantity)


def metrics_of(account: Account, as_of: dt.date):
    return account_metrics(as_of=as_of, accounts=[account.id])[account.id]


def make_meter(key: str, feature: str = "") -> Meter:
    meter = Meter.objects.create(key=key, name=key, unit="unit", feature=feature)
    MeterTier.objects.create(meter=meter, up_to=None, unit_price=Decimal("0.01"))
    return meter


def pure(**fields) -> Inputs:
    return Inputs(account_id=1, as_of=fields.pop("as_of", D(2026, 6, 30)), **fields)


# --- Run rate, burn rate, bands ------------------------------------------------------------


def test_run_rate_annualizes_the_trailing_30_days_only(acme, meter):
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "73000")
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "100")
    on(acme, meter, D(2026, 5, 31), "1000")  # 31 days back: outside the window
    on(acme, meter, D(2026, 7, 1), "5000")  # after as_of: ignored

    m = metrics_of(acme, D(2026, 6, 30))

    # Jun 1–30 = 30 days × 100 = 3,000; × 365 / 30 = 36,500.00.
    assert m.run_rate == Decimal("36500.00")
    assert m.revenue_30d == Decimal("3000.00")
    assert m.last_usage_on == D(2026, 6, 30)
    assert m.days_since_usage == 0


def test_burn_rate_is_run_rate_over_committed_arr_in_force(acme, meter):
    make_contract(acme, D(2025, 1, 1), D(2025, 12, 31), "100000")  # expired
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "73000")  # in force
    make_contract(acme, D(2026, 7, 1), D(2027, 6, 30), "50000")  # not started yet
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "100")

    m = metrics_of(acme, D(2026, 6, 30))

    # Run rate 36,500 ÷ the one commitment in force, 73,000 = 0.5: drive adoption.
    assert m.committed_arr == Decimal("73000")
    assert m.burn_rate == Decimal("0.5000")
    assert m.band == "adopt"


def test_domain_example_240k_commit_burning_80k_annualized_is_a_third():
    # $80K annualized = 80,000 × 30 / 365 over the trailing 30 days.
    m = derive(pure(rev_n=Decimal(80000) * 30 / 365, committed_arr=Decimal(240000)), T, feature_count=0)

    # 80,000 / 240,000 = 0.33333… → 0.3333, under 40%: escalate.
    assert m.run_rate == Decimal("80000.00")
    assert m.burn_rate == Decimal("0.3333")
    assert m.band == "escalate"


@pytest.mark.parametrize(
    ("daily", "burn", "band"),
    [
        # run rate = 365 × daily; ÷ 36,500 committed.
        ("70", "0.7000", "expand"),  # 25,550 / 36,500 = 0.70 exactly: ≥ 70% pitches expansion
        ("69.99", "0.6999", "adopt"),  # 25,546.35 / 36,500
        ("40", "0.4000", "adopt"),  # 14,600 / 36,500 = 0.40 exactly: still adoption
        ("39.99", "0.3999", "escalate"),  # 14,596.35 / 36,500
    ],
)
def test_burn_bands_include_their_lower_boundary(daily, burn, band):
    m = derive(pure(rev_n=Decimal(daily) * 30, committed_arr=Decimal(36500)), T, feature_count=0)

    assert m.burn_rate == Decimal(burn)
    assert m.band == band


def test_without_a_commitment_in_force_there_is_no_burn_and_no_band():
    m = derive(pure(rev_n=Decimal(3000)), T, feature_count=0)

    assert m.burn_rate is None
    assert m.band == "none"
    assert band_for(None, T) == "none"


# --- Pacing, projection, consumption, credits ---------------------------------------------


def test_commit_pacing_and_projected_burn_at_term_end(acme, meter):
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "36500")
    on(acme, meter, D(2025, 12, 31), "500")  # before the term: not consumed in it
    spend(acme, meter, D(2026, 1, 1), D(2026, 1, 30), "40")  # 30 days = 1,200
    spend(acme, meter, D(2026, 1, 31), D(2026, 3, 1), "60")  # 30 days = 1,800

    m = metrics_of(acme, D(2026, 3, 1))

    # Jan 1 → Mar 1 is 31 + 28 + 1 = 60 days: pro-rated commitment 36,500 × 60 / 365 = 6,000.
    # Consumed in term 1,200 + 1,800 = 3,000 → pacing 0.5.
    assert m.consumed_in_term == Decimal("3000.00")
    assert m.commit_pacing == Decimal("0.5000")
    # Run rate 1,800 × 365 / 30 = 21,900. 305 days remain (Mar 2 → Dec 31), so by term end
    # 3,000 + 21,900 × 305 / 365 = 3,000 + 18,300 = 21,300 of 36,500 = 0.58356… → 0.5836.
    assert m.run_rate == Decimal("21900.00")
    assert m.projected_burn_at_term_end == Decimal("0.5836")
    # Consumption rate (commit): consumed 3,000 / the whole term's 36,500 = 0.08219… → 0.0822.
    assert m.consumption_rate == Decimal("0.0822")


def test_mom_growth_compares_the_trailing_30_days_with_the_30_before(acme, meter):
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "36500")
    on(acme, meter, D(2025, 12, 31), "500")  # Mar 1 − 60 days: just outside the prior window
    spend(acme, meter, D(2026, 1, 1), D(2026, 1, 30), "40")
    spend(acme, meter, D(2026, 1, 31), D(2026, 3, 1), "60")

    m = metrics_of(acme, D(2026, 3, 1))

    # Jan 31–Mar 1: 1,800; Jan 1–Jan 30: 1,200 → 1,800 / 1,200 − 1 = 0.5.
    assert m.mom_growth == Decimal("0.5000")


def test_mom_growth_is_none_without_a_prior_month():
    assert derive(pure(rev_n=Decimal(100)), T, feature_count=0).mom_growth is None


def test_hybrid_consumption_is_the_included_meters_quantity_this_month(acme, meter):
    gb = make_meter("gb")
    make_contract(
        acme,
        D(2026, 1, 1),
        D(2026, 12, 31),
        model=PricingModel.HYBRID,
        included_units=Decimal(1000),
        included_meter=meter.key,
    )
    on(acme, meter, D(2026, 5, 31), "50", quantity="5000")  # last month: does not count
    on(acme, meter, D(2026, 6, 5), "3", quantity="300")
    on(acme, meter, D(2026, 6, 20), "4", quantity="400")
    on(acme, gb, D(2026, 6, 10), "9", quantity="900")  # not the included meter
    on(acme, meter, D(2026, 6, 21), "9.99", quantity="999")  # after as_of

    # Jun 1–20 on api-calls: 300 + 400 = 700 of 1,000 included.
    assert metrics_of(acme, D(2026, 6, 20)).consumption_rate == Decimal("0.7000")
    # A day later: 300 + 400 + 999 = 1,699 → 1.699.
    assert metrics_of(acme, D(2026, 6, 21)).consumption_rate == Decimal("1.6990")


def test_credits_balance_run_out_date_and_consumption(acme, meter):
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), model=PricingModel.CREDITS, credits=Decimal(10000))
    on(acme, meter, D(2025, 12, 20), "500")  # before the credits were bought
    on(acme, meter, D(2026, 1, 15), "3950")
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "100")

    m = metrics_of(acme, D(2026, 6, 30))

    # Used since Jan 1: 3,950 + 30 × 100 = 6,950 → balance 3,050.
    assert m.credit_balance == Decimal("3050.00")
    # Burning 3,000 / 30 = 100 a day: 30.5 days → the 31st day after Jun 30 = Jul 31.
    assert m.credits_run_out_on == D(2026, 7, 31)
    # 6,950 / 10,000.
    assert m.consumption_rate == Decimal("0.6950")
    # No committed ARR on a credit plan: no burn.
    assert m.burn_rate is None


def test_an_exhausted_credit_balance_runs_out_on_the_as_of_day():
    m = derive(
        pure(credits=Decimal(1000), credits_used=Decimal("1200.50"), rev_n=Decimal(300), credits_rev_n=Decimal(300)),
        T,
        feature_count=0,
    )

    assert m.credit_balance == Decimal("-200.50")
    assert m.credits_run_out_on == D(2026, 6, 30)


# --- TTFBE, growth, net-new, adoption -----------------------------------------------------


def test_ttfbe_is_days_from_contract_start_to_the_first_priced_usage(acme, meter):
    history = make_account("history")
    on(history, meter, D(2026, 1, 1), "1")  # usage history begins Jan 1
    make_contract(acme, D(2026, 3, 1), D(2027, 2, 28), "36500")
    on(acme, meter, D(2026, 3, 5), "0", quantity="10")  # free: not billable
    on(acme, meter, D(2026, 3, 11), "2.50")

    # Mar 1 → Mar 11 = 10 days; nothing priced yet on Mar 10.
    assert metrics_of(acme, D(2026, 6, 30)).ttfbe_days == 10
    assert metrics_of(acme, D(2026, 3, 10)).ttfbe_days is None


def test_ttfbe_is_unknown_when_the_contract_started_before_usage_history(acme, meter):
    make_contract(acme, D(2025, 12, 1), D(2026, 11, 30), "36500")
    on(acme, meter, D(2026, 1, 3), "5")  # the first rollup anywhere: history starts Jan 3

    assert metrics_of(acme, D(2026, 6, 30)).ttfbe_days is None


def test_ttfbe_is_known_from_a_declared_complete_from_day_even_when_the_first_usage_is_the_first_stored(acme, meter):
    """A backfill that starts on the first customer's first usage day used to leave the whole
    first cohort's TTFBE unknown; declaring history complete from a day makes it known."""
    from usage.ingestion.services import usage_complete_from_declare

    make_contract(acme, D(2025, 12, 1), D(2026, 11, 30), "36500")
    on(acme, meter, D(2026, 1, 3), "5")  # the first rollup anywhere
    usage_complete_from_declare(day=D(2025, 12, 1), source="test")

    assert metrics_of(acme, D(2026, 6, 30)).ttfbe_days == 33  # Dec 1 → Jan 3
    usage_complete_from_declare(day=D(2026, 1, 1), source="a later import")  # the earliest declaration stays
    assert metrics_of(acme, D(2026, 6, 30)).ttfbe_days == 33


def test_ttfbe_stays_unknown_for_a_contract_older_than_the_declared_day(acme, meter):
    from usage.ingestion.services import usage_complete_from_declare

    make_contract(acme, D(2025, 11, 30), D(2026, 11, 30), "36500")
    on(acme, meter, D(2026, 1, 3), "5")
    usage_complete_from_declare(day=D(2025, 12, 1))

    assert metrics_of(acme, D(2026, 6, 30)).ttfbe_days is None


def test_expansion_velocity_is_compounded_monthly_growth_over_90_days(acme, meter):
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "36500")
    # The 30 days ending 90 days before Jun 30: Mar 3 → Apr 1.
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "100")
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "133.10")

    # 3,993 / 3,000 = 1.331 = 1.1³ → 10% a month.
    assert metrics_of(acme, D(2026, 6, 30)).expansion_velocity == Decimal("0.1000")


def test_expansion_velocity_is_none_for_a_contract_90_days_old_or_less(acme, meter):
    make_contract(acme, D(2026, 4, 1), D(2027, 3, 31), "36500")  # Jun 30 − Apr 1 = 90 days
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "100")
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "133.10")

    assert metrics_of(acme, D(2026, 6, 30)).expansion_velocity is None
    assert metrics_of(acme, D(2026, 7, 1)).expansion_velocity is not None


def test_net_new_arr_is_the_trailing_90_day_run_rate_minus_the_prior_90(acme, meter):
    shrinking = make_account("shrinking")
    on(acme, meter, D(2026, 1, 1), "1000")  # 180 days back: in neither window
    spend(acme, meter, D(2026, 1, 2), D(2026, 4, 1), "80")  # prior 90 days: 7,200
    spend(acme, meter, D(2026, 4, 2), D(2026, 6, 30), "100")  # trailing 90 days: 9,000
    spend(shrinking, meter, D(2026, 1, 2), D(2026, 4, 1), "100")
    spend(shrinking, meter, D(2026, 4, 2), D(2026, 6, 30), "80")

    result = account_metrics(as_of=D(2026, 6, 30), accounts=[acme.id, shrinking.id])

    # (9,000 − 7,200) × 365 / 90 = 7,300; and the reverse is negative.
    assert result[acme.id].net_new_arr == Decimal("7300.00")
    assert result[shrinking.id].net_new_arr == Decimal("-7300.00")


def test_use_cases_count_meters_active_in_30_days_and_workloads_seen(acme, meter):
    tokens, gb, minutes = make_meter("tokens"), make_meter("gb"), make_meter("minutes")
    on(acme, meter, D(2026, 6, 30), "1", quantity="10")
    on(acme, tokens, D(2026, 6, 1), "1", quantity="5")  # 29 days back: inside
    on(acme, gb, D(2026, 5, 31), "1", quantity="7")  # 30 days back: outside
    on(acme, minutes, D(2026, 6, 15), "0", quantity="0")  # a row, but no usage
    FirstSeen.objects.bulk_create(
        [
            FirstSeen(account=acme, kind=FirstSeenKind.WORKLOAD, value="etl", first_day=D(2026, 5, 1)),
            FirstSeen(account=acme, kind=FirstSeenKind.WORKLOAD, value="chat", first_day=D(2026, 6, 30)),
            FirstSeen(account=acme, kind=FirstSeenKind.WORKLOAD, value="batch", first_day=D(2026, 7, 1)),
            FirstSeen(account=acme, kind=FirstSeenKind.REGION, value="eu-west", first_day=D(2026, 5, 1)),
        ]
    )

    m = metrics_of(acme, D(2026, 6, 30))

    assert m.meters_active == 2  # api-calls, tokens
    assert m.workloads == 2  # etl, chat (batch is after as_of; a region is not a workload)


def test_feature_adoption_is_features_used_over_features_offered(acme, meter):
    search, chat_in, chat_out = (
        make_meter("search-q", "search"),
        make_meter("chat-in", "chat"),
        make_meter("chat-out", "chat"),
    )
    make_meter("vision", "vision")
    for m in (meter, search, chat_in, chat_out):
        on(acme, m, D(2026, 6, 20), "1")

    # Features offered: search, chat, vision (api-calls has none); used: search, chat → 2/3.
    assert metrics_of(acme, D(2026, 6, 30)).feature_adoption == Decimal("0.6667")


# --- Health, gates ------------------------------------------------------------------------


def test_health_score_is_the_sum_of_five_explained_components():
    m = derive(
        pure(
            rev_n=Decimal(1050),
            rev_prior_n=Decimal(1000),
            committed_arr=Decimal(36500),
            consumed_in_term=Decimal(6000),
            commit_day_dollars_to_date=Decimal(36500 * 100),
            last_usage_on=D(2026, 6, 27),
        ),
        T,
        feature_count=0,
    )

    points = {c.key: c.points for c in m.health_components}
    # burn: run rate 12,775 / 36,500 = 0.35 → 35 × 0.35 / 0.70 = 17.5
    # trend: MoM 1,050 / 1,000 − 1 = 0.05 → 20 × (0.05 + 0.20) / 0.30 = 16.67 → 16.7
    # anomalies: no decline → 15
    # recency: 3 days → 15 × (1 − 2/13) = 12.69 → 12.7
    # pacing: 6,000 / (36,500 × 100 / 365 = 10,000) = 0.6 → 15 × 0.6 = 9.0
    assert points == {
        "burn": Decimal("17.5"),
        "trend": Decimal("16.7"),
        "anomalies": Decimal(15),
        "recency": Decimal("12.7"),
        "pacing": Decimal("9.0"),
    }
    assert [c.max_points for c in m.health_components] == [35, 20, 15, 15, 15]
    # 17.5 + 16.7 + 15 + 12.7 + 9.0 = 70.9 → 71.
    assert m.health_score == 71


def test_health_is_neutral_without_commitment_and_zero_for_recency_without_usage():
    m = derive(pure(), T, feature_count=0)

    # burn 25 (neutral) + trend 10 (neutral) + anomalies 15 + recency 0 + pacing 10 (neutral).
    assert [c.points for c in m.health_components] == [25, 10, 15, 0, 10]
    assert m.health_score == 60


def test_a_sudden_decline_takes_the_anomaly_points():
    m = derive(pure(series=dropped(seasonal(), days=3)), T, feature_count=0)

    assert m.decline is not None
    assert {c.key: c.points for c in m.health_components}["anomalies"] == 0


def test_next_gate_is_the_90_day_checkpoint_then_the_12_month_clawback():
    land = D(2026, 1, 1)

    assert gates(land, D(2026, 3, 31)) == ("checkpoint_90", D(2026, 4, 1))  # day 89
    assert gates(land, D(2026, 4, 1)) == ("clawback_12m", D(2027, 1, 1))  # day 90
    assert gates(land, D(2027, 1, 1)) == ("", None)
    assert gates(None, D(2026, 4, 1)) == ("", None)


# --- Sudden decline (pure) ----------------------------------------------------------------

WEEK = [Decimal(100)] * 5 + [Decimal(40)] * 2  # Monday … Sunday: weekends are 60% lower


def seasonal(factors=(Decimal("0.95"), Decimal(1), Decimal("1.05")), week=WEEK) -> list[Decimal]:
    """Nine weeks (63 days) from a Monday; week w is scaled by factors[w % len(factors)].

    With the default factors the 8 baseline weeks are ×0.95, 1, 1.05, 0.95, 1, 1.05, 0.95, 1:
    each weekday's median is exactly its base and its MAD 5% of it.
    """
    return [base * factors[w % len(factors)] for w in range(9) for base in week]


def dropped(series: list[Decimal], *, days: int, to: Decimal = Decimal("0.4")) -> list[Decimal]:
    """The last ``days`` days at ``to`` × their value (0.4 = a 60% drop)."""
    return series[:-days] + [v * to for v in series[-days:]]


def test_steady_weekday_seasonal_usage_does_not_fire_on_its_weekend_dips():
    series = seasonal()
    # The as-of day is a Sunday at 42 against weekdays at 105: a fixed "60% below" rule
    # would fire, but each weekday is compared with the same weekday's history.
    assert series[-1] == Decimal("42.00")

    assert detect_decline(series, T) is None


def test_a_60_percent_drop_for_the_last_three_days_fires():
    decline = detect_decline(dropped(seasonal(), days=3), T)

    # Fri, Sat, Sun expected 100, 40, 40 = 180 (medians); actual 0.4 × (105, 42, 42) = 75.6.
    # Each is under 60% of expected and beyond 3 × 1.4826 × MAD (22.2 on Fri, 8.9 on Sat/Sun).
    assert decline is not None
    assert (decline.days, decline.expected, decline.actual) == (3, Decimal(180), Decimal("75.6"))
    # (180 − 75.6) × 365 / 3 = 12,702.00.
    assert decline.annualized_shortfall == Decimal("12702.00")


def test_a_drop_for_only_two_days_does_not_fire():
    assert detect_decline(dropped(seasonal(), days=2), T) is None


def test_a_drop_that_recovered_before_the_as_of_day_does_not_fire():
    series = seasonal()
    series[-5:-2] = [v * Decimal("0.4") for v in series[-5:-2]]  # Wed–Fri down, Sat/Sun normal

    assert detect_decline(series, T) is None


def test_a_drop_inside_a_noisy_series_normal_spread_does_not_fire():
    # Weeks alternate ×0.5 and ×1.5: Monday's median is 100 but its MAD is 50, so only a
    # shortfall over 3 × 1.4826 × 50 = 222 is unusual. 40 against 100 is not.
    series = seasonal(factors=(Decimal("0.5"), Decimal("1.5")))
    series[-3:] = [Decimal(40), Decimal(16), Decimal(16)]  # 40% of Fri, Sat, Sun medians

    assert detect_decline(series, T) is None


@pytest.mark.parametrize(("level", "fires"), [("10", True), ("9.99", False)])
def test_decline_ignores_accounts_expected_below_the_minimum_daily_revenue(level, fires):
    series = [Decimal(level)] * 60 + [Decimal(0)] * 3

    decline = detect_decline(series, T)

    assert (decline is not None) is fires
    if fires:
        assert (decline.days, decline.expected, decline.actual) == (3, Decimal(30), Decimal(0))


# --- Hierarchy and as-of dates ------------------------------------------------------------


@pytest.fixture
def family(meter):
    """Parent P with divisions D1 (which has its own division D1a) and D2.

    Contracts: P 36,500 and D1 18,250, both in force all 2026. Daily revenue in June:
    P 10, D1 20, D1a 5, D2 25.
    """
    p = make_account("p")
    d1 = make_account("d1", parent=p)
    d1a = make_account("d1a", segment=Segment.MID_MARKET, parent=d1)
    d2 = make_account("d2", parent=p)
    make_contract(p, D(2026, 1, 1), D(2026, 12, 31), "36500")
    make_contract(d1, D(2026, 1, 1), D(2026, 12, 31), "18250")
    for account, daily in ((p, "10"), (d1, "20"), (d1a, "5"), (d2, "25")):
        spend(account, meter, D(2026, 6, 1), D(2026, 6, 30), daily)
    FirstSeen.objects.bulk_create(
        [
            FirstSeen(account=d1a, kind=FirstSeenKind.WORKLOAD, value="etl", first_day=D(2026, 6, 1)),
            FirstSeen(account=d2, kind=FirstSeenKind.WORKLOAD, value="etl", first_day=D(2026, 6, 2)),
            FirstSeen(account=d2, kind=FirstSeenKind.WORKLOAD, value="chat", first_day=D(2026, 6, 2)),
        ]
    )
    return p, d1, d1a, d2


def test_a_parents_metrics_roll_up_its_whole_subtree(family):
    p, d1, d1a, d2 = family

    # All four at once: a division being a root too must not count twice under P.
    result = account_metrics(as_of=D(2026, 6, 30), accounts=[p.id, d1.id, d1a.id, d2.id])

    # P: (10 + 20 + 5 + 25) × 30 = 1,800 → 21,900; committed 36,500 + 18,250 = 54,750 → 0.4.
    assert (result[p.id].run_rate, result[p.id].committed_arr) == (Decimal("21900.00"), Decimal(54750))
    assert (result[p.id].burn_rate, result[p.id].band) == (Decimal("0.4000"), "adopt")
    assert result[p.id].workloads == 2  # etl (in two divisions) and chat
    # D1: (20 + 5) × 30 = 750 → 9,125 / 18,250 = 0.5.
    assert (result[d1.id].run_rate, result[d1.id].burn_rate) == (Decimal("9125.00"), Decimal("0.5000"))
    # Leaves: their own usage only, no commitment.
    assert (result[d1a.id].run_rate, result[d1a.id].band) == (Decimal("1825.00"), "none")
    assert (result[d2.id].run_rate, result[d2.id].committed_arr) == (Decimal("9125.00"), Decimal(0))


def test_a_portfolio_over_a_parent_and_its_divisions_counts_each_account_once(family):
    p, d1, _, _ = family

    for accounts in ([p.id], [p.id, d1.id]):
        total = portfolio_metrics(as_of=D(2026, 6, 30), accounts=accounts)

        # 4 accounts; 1,800 × 365 / 30 = 21,900; 54,750 committed; 0.4 — not D1 twice.
        assert total.accounts == 4
        assert total.run_rate == Decimal("21900.00")
        assert total.committed_arr == Decimal(54750)
        assert total.burn_rate == Decimal("0.4000")


def test_the_same_data_gives_each_as_of_day_its_own_answer(acme, meter):
    make_contract(acme, D(2026, 1, 1), D(2026, 6, 30), "36500")
    make_contract(acme, D(2026, 7, 1), D(2027, 6, 30), "73000")  # the renewal, doubled
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "100")
    spend(acme, meter, D(2026, 7, 1), D(2026, 7, 30), "200")
    on(acme, meter, D(2026, 7, 31), "100000")  # after both as-of days

    june = metrics_of(acme, D(2026, 6, 30))
    july = metrics_of(acme, D(2026, 7, 15))

    # Jun 30: 30 × 100 = 3,000 → 36,500 run rate over the first contract's 36,500 → 1.0.
    # That contract ran 181 days (Jan 1–Jun 30): 36,500 × 181 / 365 = 18,100 to date and
    # in total; 3,000 consumed → pacing and projection 3,000 / 18,100 = 0.16575 → 0.1657.
    assert (june.run_rate, june.committed_arr, june.burn_rate) == (Decimal("36500.00"), 36500, Decimal("1.0000"))
    assert (june.commit_pacing, june.projected_burn_at_term_end) == (Decimal("0.1657"), Decimal("0.1657"))
    # Jul 15: Jun 16–30 15 × 100 + Jul 1–15 15 × 200 = 4,500 → 54,750 over 73,000 = 0.75.
    # The renewal's 15 days to date: 73,000 × 15 / 365 = 3,000, consumed Jul 1–15 = 3,000 → 1.0.
    assert (july.run_rate, july.committed_arr, july.burn_rate) == (Decimal("54750.00"), 73000, Decimal("0.7500"))
    assert (july.consumed_in_term, july.commit_pacing) == (Decimal("3000.00"), Decimal("1.0000"))
    assert (june.last_usage_on, july.last_usage_on) == (D(2026, 6, 30), D(2026, 7, 15))
    # Before any contract started there is no commitment and no land date.
    before = metrics_of(acme, D(2025, 12, 31))
    assert (before.committed_arr, before.band, before.land_on, before.run_rate) == (0, "none", None, 0)


# --- Portfolio: NRR, GUR, median TTFBE, realization ---------------------------------------


def test_nrr_is_revenue_now_over_revenue_a_year_ago_from_the_same_accounts(acme, meter):
    churned, new = make_account("churned"), make_account("new")
    on(acme, meter, D(2025, 6, 15), "1000")  # in the 30 days ending Jun 30 2025
    on(acme, meter, D(2026, 6, 15), "1500")
    on(churned, meter, D(2025, 6, 15), "1000")  # nothing this year
    on(new, meter, D(2026, 6, 15), "5000")  # not a customer a year ago: left out

    total = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[acme.id, churned.id, new.id])

    # (1,500 + 0) / (1,000 + 1,000) = 0.75: expansion and churn both count.
    assert total.nrr == Decimal("0.7500")


def test_gur_counts_no_more_than_last_quarter_per_account(acme, meter):
    shrinking, new = make_account("shrinking"), make_account("new")
    on(acme, meter, D(2026, 3, 1), "9000")  # prior 90 days (Jan 2 – Apr 1)
    on(acme, meter, D(2026, 6, 1), "12000")  # trailing 90 days (Apr 2 – Jun 30)
    on(shrinking, meter, D(2026, 3, 1), "9000")
    on(shrinking, meter, D(2026, 6, 1), "4500")
    on(new, meter, D(2026, 6, 1), "6000")  # no prior quarter: left out

    all_three = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[acme.id, shrinking.id, new.id])
    grower = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[acme.id])

    # (min(12,000, 9,000) + min(4,500, 9,000)) / (9,000 + 9,000) = 13,500 / 18,000 = 0.75.
    assert all_three.gur == Decimal("0.7500")
    # Growth never lifts GUR above 1: min(12,000, 9,000) / 9,000.
    assert grower.gur == Decimal("1.0000")


def test_median_ttfbe_over_accounts_with_a_first_billable_event(meter):
    history = make_account("history")
    on(history, meter, D(2026, 1, 1), "1")  # usage history begins Jan 1
    accounts = []
    for name, first_usage in (("t4", D(2026, 2, 5)), ("t10", D(2026, 2, 11)), ("t30", D(2026, 3, 3)), ("none", None)):
        account = make_account(name)
        make_contract(account, D(2026, 2, 1), D(2027, 1, 31), "12000")
        if first_usage:
            on(account, meter, first_usage, "1")
        accounts.append(account)

    everyone = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[history.id, *(a.id for a in accounts)])
    two = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[a.id for a in accounts[:2]])

    # TTFBE from Feb 1: 4, 10 and 30 days (Feb has 28); no usage and no contract are left out.
    assert everyone.median_ttfbe_days == Decimal("10.0")
    assert two.median_ttfbe_days == Decimal("7.0")  # (4 + 10) / 2


def test_realization_compares_consumption_with_the_commitment_in_force_over_a_year(acme, meter):
    payg = make_account("payg")
    make_contract(acme, D(2025, 7, 1), D(2025, 12, 31), "7300")
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "36500")
    on(acme, meter, D(2025, 6, 30), "999")  # 365 days back: outside the year
    spend(acme, meter, D(2025, 7, 1), D(2025, 12, 31), "10")  # 184 days = 1,840
    spend(acme, meter, D(2026, 1, 1), D(2026, 6, 30), "50")  # 181 days = 9,050
    on(payg, meter, D(2026, 6, 1), "1000")  # no commitment: not part of realization

    total = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[acme.id, payg.id])

    # Committed over Jul 1 2025 – Jun 30 2026: 7,300 × 184 / 365 + 36,500 × 181 / 365
    # = 3,680 + 18,100 = 21,780; realized 1,840 + 9,050 = 10,890; gap 10,890; 0.5.
    assert total.realization_committed == Decimal("21780.00")
    assert total.realization_realized == Decimal("10890.00")
    assert total.realization_gap == Decimal("10890.00")
    assert total.realization == Decimal("0.5000")


def test_portfolio_consumption_rate_is_committed_usage_over_the_commitment(acme, meter):
    prepaid = make_account("prepaid")
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "36500")
    make_contract(prepaid, D(2026, 1, 1), D(2026, 12, 31), model=PricingModel.CREDITS, credits=Decimal(10000))
    spend(acme, meter, D(2026, 1, 1), D(2026, 6, 30), "50")  # 181 days = 9,050
    on(prepaid, meter, D(2026, 6, 1), "5000")  # no committed ARR: not a share of anything

    total = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[acme.id, prepaid.id])

    # 9,050 / 36,500 = 0.24794… → 0.2479 (not (9,050 + 5,000) / 36,500).
    assert total.consumption_rate == Decimal("0.2479")


def test_domain_waterfall_realization_gap():
    # Start 100 − churn 20 + new commitments 60 = 140 committed; actual 110 → gap 30.
    p = Portfolio(
        as_of=D(2026, 6, 30),
        accounts=0,
        run_rate=Decimal(110),
        committed_arr=Decimal(140),
        burn_rate=None,
        nrr=None,
        gur=None,
        median_ttfbe_days=None,
        expansion_velocity=None,
        consumption_rate=None,
        net_new_arr=Decimal(0),
        realization_committed=Decimal(140),
        realization_realized=Decimal(110),
    )

    assert p.realization_gap == Decimal(30)
    assert p.realization == Decimal("0.7857")  # 110 / 140


def test_portfolio_expansion_velocity_and_net_new_over_mature_accounts(acme, meter):
    young = make_account("young")
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), "36500")
    make_contract(young, D(2026, 5, 1), D(2027, 4, 30), "36500")  # 60 days old: not mature
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "100")  # 3,000, 90 days ago
    spend(acme, meter, D(2026, 6, 1), D(2026, 6, 30), "133.10")  # 3,993 now
    spend(young, meter, D(2026, 6, 1), D(2026, 6, 30), "50")  # 1,500 now

    total = portfolio_metrics(as_of=D(2026, 6, 30), accounts=[acme.id, young.id])

    # Mature accounts only: 3,993 / 3,000 = 1.1³ → 0.1 a month.
    assert total.expansion_velocity == Decimal("0.1000")
    # Net-new over everyone: trailing 90 days 3,993 + 1,500 = 5,493 vs prior 90 days
    # (Jan 2 – Apr 1) 3,000: 2,493 × 365 / 90 = 10,110.50.
    assert total.net_new_arr == Decimal("10110.50")


def test_credits_run_out_follows_the_buyers_own_burn_not_its_subtree(acme, meter):
    # Acme bought 10,000 of credits on Jan 1; its division burns 1,000/day, Acme itself
    # 10/day over the last 30 days (Jun 1–30). Balance 10,000 − 30 × 10 = 9,700; at 10/day
    # it lasts 970 days: past the term end, not 10 days as the subtree's burn would say.
    division = Account.objects.create(external_id="acme-div", name="Acme Div", segment="smb", parent=acme)
    make_contract(acme, D(2026, 1, 1), D(2026, 12, 31), model=PricingModel.CREDITS, credits=Decimal(10000))
    for k in range(30):
        day = D(2026, 6, 1) + dt.timedelta(days=k)
        on(acme, meter, day, "10")
        on(division, meter, day, "1000")
    m = account_metrics(as_of=D(2026, 6, 30), accounts=[acme.pk])[acme.pk]
    assert m.credit_balance == Decimal("9700.00")
    assert m.credits_run_out_on == D(2026, 6, 30) + dt.timedelta(days=970)


def test_retention_inputs_give_the_same_nrr_as_the_full_inputs(acme, meter):
    # Acme: $100/day a year ago, $150/day now; Globex: $0 a year ago (not counted), $70 now.
    globex = Account.objects.create(external_id="globex", name="Globex", segment=Segment.SMB)
    for k in range(30):
        on(acme, meter, D(2025, 6, 1) + dt.timedelta(days=k), "100")
        on(acme, meter, D(2026, 6, 1) + dt.timedelta(days=k), "150")
        on(globex, meter, D(2026, 6, 1) + dt.timedelta(days=k), "70")
    t = Thresholds()
    as_of = D(2026, 6, 30)
    full = portfolio(
        account_inputs(as_of=as_of, accounts=[acme.pk, globex.pk], rollup=False, thresholds=t).values(),
        as_of=as_of,
        t=t,
    )
    light = portfolio(
        retention_inputs(as_of=as_of, accounts=[acme.pk, globex.pk], thresholds=t).values(), as_of=as_of, t=t
    )
    # 4,500 now ÷ 3,000 a year ago = 1.5000.
    assert full.nrr == light.nrr == Decimal("1.5000")


def test_a_blank_ttfbe_says_why_on_the_account_page(acme, meter):
    from usage.ingestion.services import usage_complete_from_declare
    from usage.views.panels import ttfbe_unknown_reason

    make_contract(acme, D(2025, 11, 30), D(2026, 11, 30), "36500")
    on(acme, meter, D(2026, 1, 3), "5")
    usage_complete_from_declare(day=D(2025, 12, 1))
    snapshot = type("Snapshot", (), {"as_of": D(2026, 6, 30)})()

    assert ttfbe_unknown_reason(acme, snapshot) == (
        "unknown: the contract started Nov 30, 2025, before usage history is complete (from Dec 1, 2025)"
    )
