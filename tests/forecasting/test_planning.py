"""Planning: cohort ramps, the deal desk estimate, the realization waterfall and their pages."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Contract, PricingModel, Segment
from forecasting import cohorts, waterfall
from forecasting.cohorts import LandTrajectory, level_off_month, median_trajectory
from forecasting.dealdesk import BASIS_INDUSTRY, BASIS_SEGMENT, deal_desk_estimate, percentile
from revops.models import Role
from usage.models import DailyRollup, Meter

D = Decimal


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


_serial = iter(range(1, 10_000))


def account(name: str, segment: str = Segment.SMB, industry: str = "Software") -> Account:
    return Account.objects.create(external_id=name, name=name, segment=segment, industry=industry)


def contract(acct: Account, *, signed: dt.date, start: dt.date, end: dt.date, arr: str, amends=None) -> Contract:
    return Contract.objects.create(
        external_id=f"c-{next(_serial)}",
        account=acct,
        pricing_model=PricingModel.COMMIT,
        signed_on=signed,
        start_on=start,
        end_on=end,
        committed_arr=D(arr),
        amends=amends,
    )


@pytest.fixture
def meter(db) -> Meter:
    return Meter.objects.create(key="api-calls", name="API calls", unit="call")


def revenue(acct: Account, meter: Meter, day: dt.date, amount: str) -> None:
    DailyRollup.objects.create(account=acct, meter=meter, day=day, quantity=1, revenue=D(amount), event_count=1)


def daily(acct: Account, meter: Meter, last_day: dt.date, amount: str, days: int = 30) -> None:
    DailyRollup.objects.bulk_create(
        DailyRollup(
            account=acct, meter=meter, day=last_day - dt.timedelta(days=k), quantity=1, revenue=D(amount), event_count=1
        )
        for k in range(days)
    )


# --- Level-off (pure) ---------------------------------------------------------------------


def test_s_curve_levels_off_at_the_first_month_followed_by_two_slow_months():
    # Growth into months 2..9: 200%, 167%, 75%, 28.6%, 7.8%, 3.1%, 2.0%, 1.0%.
    # Month 5 → 6 still grows 7.8%; month 6 → 7 (3.1%) and 7 → 8 (2.0%) are both < 5%.
    medians = [D(v) for v in ("0.05", "0.15", "0.40", "0.70", "0.90", "0.97", "1.00", "1.02", "1.03")]
    assert level_off_month(medians) == 6
    assert cohorts.ramp_days(level_off_month(medians)) == 180


def test_one_slow_month_followed_by_growth_is_not_a_level_off():
    # 1 → 1.02 is 2%, but 1.02 → 1.20 is 17.6%; from month 3 growth is 0.8% then 0.8%.
    assert level_off_month([D("1"), D("1.02"), D("1.20"), D("1.21"), D("1.22")]) == 3


def test_steady_growth_or_no_usage_never_levels_off():
    assert level_off_month([D("1.1") ** k for k in range(12)]) is None
    assert level_off_month([D(0), D(0), D(0), D("0.5")]) is None  # zero has not started ramping
    assert level_off_month([D("0.5"), D("0.5")]) is None  # too short to see two months of growth


def test_median_stops_where_too_few_accounts_reach():
    trajectories = [[D(1), D(2), D(3)], [D(3), D(4)], [D(2), D(6)]]
    assert median_trajectory(trajectories, min_accounts=3) == [D(2), D(4)]
    assert median_trajectory(trajectories, min_accounts=1) == [D(2), D(4), D(3)]


# --- Cohorts (SQL) -------------------------------------------------------------------------


@pytest.fixture
def smb_q1_cohort(meter):
    """Three SMB lands signed in January 2026 at $12,000 ARR ($1,000 a month), complete
    months January to April 2026, and two accounts that must be left out."""
    a, b, c = account("a"), account("b"), account("c")
    for acct, start in ((a, dt.date(2026, 1, 15)), (b, dt.date(2026, 1, 15)), (c, dt.date(2026, 1, 20))):
        contract(acct, signed=dt.date(2026, 1, 15), start=start, end=dt.date(2026, 12, 31), arr="12000")
    # A later, larger renewal is not the land: A's land ARR stays $12,000.
    contract(a, signed=dt.date(2026, 3, 1), start=dt.date(2026, 3, 1), end=dt.date(2027, 2, 28), arr="50000")
    months = [dt.date(2026, m, 1) for m in (1, 2, 3, 4)]
    for acct, amounts in ((a, ("100", "500", "900", "1000")), (b, ("200", "400", "800", "1000"))):
        for day, amount in zip(months, amounts, strict=True):
            revenue(acct, meter, day, amount)
    revenue(a, meter, dt.date(2026, 2, 20), "0")  # a zero day does not move anything
    for day, amount in zip(months[1:], ("300", "1000", "1100"), strict=True):
        revenue(c, meter, day, amount)
    revenue(c, meter, dt.date(2026, 2, 15), "300")  # two rollups in one month: C's February is 600
    revenue(a, meter, dt.date(2026, 5, 3), "5000")  # May is not complete on April 30
    # Signed before usage history starts (2026-01-01): its early months would read as zero.
    early = account("early")
    contract(early, signed=dt.date(2025, 12, 10), start=dt.date(2025, 12, 10), end=dt.date(2026, 12, 9), arr="12000")
    # No commitment, nothing to normalize by.
    free = account("free")
    contract(free, signed=dt.date(2026, 1, 5), start=dt.date(2026, 1, 5), end=dt.date(2026, 12, 31), arr="0")
    return a, b, c


def test_land_trajectories_sum_complete_months_since_signing(smb_q1_cohort):
    a, b, c = smb_q1_cohort
    rows = {t.account_id: t for t in cohorts.land_trajectories(as_of=dt.date(2026, 4, 30))}

    assert set(rows) == {a.pk, b.pk, c.pk}
    assert rows[a.pk].monthly == [D("100"), D("500"), D("900"), D("1000")]
    assert rows[a.pk].committed_arr == D("12000")
    assert rows[c.pk].monthly == [D("0"), D("600"), D("1000"), D("1100")]
    # C's land contract starts 2026-01-20, its first revenue is 2026-02-01: 12 days.
    assert rows[c.pk].ttfbe_days == 12
    assert rows[a.pk].quarter == "2026-Q1"


def test_cohort_median_is_taken_per_month_over_normalized_trajectories(smb_q1_cohort):
    # Normalized by $1,000 a month: A .1 .5 .9 1.0; B .2 .4 .8 1.0; C 0 .6 1.0 1.1.
    # Medians: .1 .5 .9 1.0. Growth 3 → 4 is 11.1%, so no level-off within 4 months.
    trajectories = cohorts.land_trajectories(as_of=dt.date(2026, 4, 30))
    [cohort] = cohorts.cohorts(trajectories)

    assert (cohort.segment, cohort.label, cohort.accounts) == ("smb", "2026-Q1", 3)
    assert cohort.median == [D("0.1"), D("0.5"), D("0.9"), D("1.0")]
    assert cohort.level_off is None
    assert cohorts.suggested_ramp_days("smb", as_of=dt.date(2026, 4, 30)) is None
    assert cohorts.suggested_ramp_days("enterprise", as_of=dt.date(2026, 4, 30)) is None


def test_suggested_ramp_days_once_the_segment_levels_off(smb_q1_cohort, meter):
    a, b, c = smb_q1_cohort
    # May and June flat at $1,000 / $1,010 for everyone: medians .1 .5 .9 1.0 1.0 1.01 →
    # month 4 grows 0% then 1%: level-off month 4, ramp window 120 days.
    for acct in (a, b, c):
        revenue(acct, meter, dt.date(2026, 5, 10), "1000" if acct != a else "-4000")  # A's May: 5000 − 4000
        revenue(acct, meter, dt.date(2026, 6, 10), "1010")
    assert cohorts.suggested_ramp_days("smb", as_of=dt.date(2026, 6, 30)) == 120


# --- Deal desk (pure) ----------------------------------------------------------------------


def land(n: int, industry: str, arr: str, per_month: str, *, months: int = 12, ttfbe: int | None = None, **kw):
    start = dt.date(2025, 1, 1)
    return LandTrajectory(
        account_id=n,
        name=f"acct-{n}",
        segment=kw.get("segment", "mid-market"),
        industry=industry,
        signed_on=start,
        start_on=start,
        committed_arr=D(arr),
        monthly=[D(per_month)] * months,
        first_revenue_on=None if ttfbe is None else start + dt.timedelta(days=ttfbe),
    )


SIMILAR = [
    land(1, "Healthcare", "100000", "5000", ttfbe=10),  # 60,000 × 1 = 60,000
    land(2, "Healthcare", "200000", "15000", ttfbe=20),  # 180,000 × 0.5 = 90,000
    land(3, "Healthcare", "50000", "2000", ttfbe=30),  # 24,000 × 2 = 48,000
    land(4, "Healthcare", "80000", "5600", ttfbe=40),  # 67,200 × 1.25 = 84,000
    land(5, "Retail", "100000", "8000", months=14),  # 96,000 (months 13–14 ignored), no revenue date
    land(6, "Healthcare", "250000", "1"),  # above ×2: not similar
    land(7, "Healthcare", "100000", "1", months=11),  # no first year yet
    land(8, "Healthcare", "100000", "1", segment="enterprise"),  # other segment
]


def test_deal_desk_widens_to_the_segment_when_the_industry_has_too_few():
    # Only 4 Healthcare lands in the size band (< 5): the basis widens to mid-market.
    # Scaled first years sorted: 48,000 60,000 84,000 90,000 96,000 → median 84,000;
    # 25th percentile at rank 1 = 60,000; 75th at rank 3 = 90,000. TTFBE median of
    # 10, 20, 30, 40 = 25 days.
    estimate = deal_desk_estimate(SIMILAR, segment="mid-market", industry="Healthcare", committed_arr=D("100000"))

    assert estimate.basis == BASIS_SEGMENT
    assert estimate.count == 5
    assert [s.scaled for s in estimate.similar] == [D(48000), D(60000), D(84000), D(90000), D(96000)]
    assert (estimate.expected, estimate.low, estimate.high) == (D("84000.00"), D("60000.00"), D("90000.00"))
    assert estimate.median_ttfbe_days == D(25)


def test_deal_desk_prefers_the_same_industry_when_it_has_enough():
    # A fifth Healthcare land (36,000): basis Healthcare, scaled 36,000 48,000 60,000
    # 84,000 90,000 → median 60,000, 25th 48,000, 75th 84,000; TTFBE 5 10 20 30 40 → 20.
    lands = [*SIMILAR, land(9, "Healthcare", "100000", "3000", ttfbe=5)]
    estimate = deal_desk_estimate(lands, segment="mid-market", industry="healthcare", committed_arr=D("100000"))

    assert estimate.basis == BASIS_INDUSTRY
    assert estimate.count == 5
    assert (estimate.expected, estimate.low, estimate.high) == (D("60000.00"), D("48000.00"), D("84000.00"))
    assert estimate.median_ttfbe_days == D(20)


def test_percentile_interpolates_between_ranks():
    # rank 0.25 × 3 = 0.75 → 10 + 0.75 × 10 = 17.5; rank 2.25 → 30 + 0.25 × 10 = 32.5.
    values = [D(40), D(10), D(30), D(20)]
    assert percentile(values, D("0.25")) == D("17.5")
    assert percentile(values, D("0.75")) == D("32.5")


def test_deal_desk_without_similar_accounts_says_so():
    estimate = deal_desk_estimate(SIMILAR, segment="smb", industry="", committed_arr=D("100000"))
    assert (estimate.count, estimate.expected, estimate.enough) == (0, None, False)


# --- Waterfall (SQL + pure) ----------------------------------------------------------------

START, END = dt.date(2026, 3, 31), dt.date(2026, 6, 30)


@pytest.fixture
def domain_example(meter):
    """The reference's waterfall example (100 − 20 + 60 = 140 committed, actual 110, gap 30) scaled ×365
    so run rates are whole dollars: a constant $d a day is d × 30 × 365/30 = d × 365 a
    year. Start: A $80/day (29,200) + B $20/day (7,300) = 36,500. B stops (churn 7,300).
    New logo C signs $21,900 in the period and consumes $30/day (10,950); A stays at
    $80/day. Committed 36,500 − 7,300 + 21,900 = 51,100; actual 29,200 + 10,950 =
    40,150; gap 10,950 (= 30 × 365). An enterprise account D stays out of the SMB view."""
    a, b, c = account("a"), account("b"), account("c")
    d = account("d", segment=Segment.ENTERPRISE)
    old = {"signed": dt.date(2024, 12, 1), "start": dt.date(2025, 1, 1), "end": dt.date(2026, 12, 31)}
    contract(a, arr="40000", **old)
    contract(b, arr="10000", **old)
    contract(d, arr="90000", **old)
    contract(c, signed=dt.date(2026, 4, 15), start=dt.date(2026, 5, 1), end=dt.date(2027, 4, 30), arr="21900")
    daily(a, meter, START, "80")
    daily(a, meter, END, "80")
    daily(a, meter, dt.date(2025, 6, 30), "50")  # a year before the end: 18,250
    daily(b, meter, START, "20")
    daily(c, meter, END, "30")
    daily(d, meter, START, "10")
    daily(d, meter, END, "10")
    return a, b, c, d


def test_waterfall_reproduces_the_domain_example(domain_example):
    result = waterfall.waterfall(waterfall.period_rows(start=START, end=END, segment="smb"), start=START, end=END)

    assert result.start_run_rate == D("36500.00")
    assert (result.churn, result.churned_accounts) == (D("7300.00"), 1)
    assert (result.new_logo_commitments, result.expansion_commitments) == (D("21900.00"), D("0.00"))
    assert result.committed == D("51100.00")
    assert result.actual == D("40150.00")
    assert result.run_rate_gap == D("10950.00")
    assert (result.committed_growth, result.actual_growth) == (D("0.4000"), D("0.1000"))


def test_renewal_counts_only_its_increase_and_ended_contracts_are_churn(domain_example, meter):
    a, b, _c, _d = domain_example
    first = Contract.objects.get(account=a)
    # A renews at $46,000 (+$6,000 over $40,000); B's contract ends 2026-05-31 (churn
    # even if it still consumed); a new account outside any contract adds nothing.
    contract(
        a, signed=dt.date(2026, 5, 1), start=dt.date(2027, 1, 1), end=dt.date(2027, 12, 31), arr="46000", amends=first
    )
    Contract.objects.filter(account=b).update(end_on=dt.date(2026, 5, 31))
    daily(b, meter, END, "1")  # 365 of run rate left, but every contract has ended

    result = waterfall.waterfall(waterfall.period_rows(start=START, end=END, segment="smb"), start=START, end=END)
    assert result.expansion_commitments == D("6000.00")
    assert result.churn == D("7300.00")
    assert result.actual == D("40515.00")  # 29,200 + 10,950 + 365


def test_stacked_target_counts_new_accounts_by_commitment(domain_example):
    # At 2026-06-30 with a 90-day SMB ramp: C (started 2026-05-01, 60 days) is new →
    # its $21,900 commitment; A and B are mature → 29,200 + 0. Stacked 51,100. A year
    # earlier A ran 18,250 → year-over-year target at 20%: 21,900.
    rows = waterfall.period_rows(start=START, end=END, segment="smb")
    smb, total = waterfall.stacked_target(rows, end=END, ramp_days={"smb": 90}, growth_target=D("0.20"))

    assert (smb.mature_accounts, smb.mature_run_rate) == (2, D("29200.00"))
    assert (smb.new_accounts, smb.new_commitments) == (1, D("21900.00"))
    assert smb.stacked == D("51100.00")
    assert (smb.last_year_run_rate, smb.yoy_target) == (D("18250.00"), D("21900.00"))
    assert smb.difference == D("29200.00")
    assert total.stacked == D("51100.00")
    # A ramp window shorter than C's 60 days makes it mature: its run rate counts instead.
    [smb_short, _] = waterfall.stacked_target(rows, end=END, ramp_days={"smb": 30}, growth_target=D("0.20"))
    assert smb_short.stacked == D("40150.00")


# --- Pages ---------------------------------------------------------------------------------


@pytest.fixture
def leader(make_user):
    return make_user(Role.LEADER)


@pytest.fixture
def finance(make_user, with_totp):
    user = make_user(Role.FINANCE)
    with_totp(user)
    return user


def test_planning_pages_are_for_finance_leaders_and_admins(ae, leader, finance):
    for url in ("/planning/cohorts/", "/planning/deal-desk/", "/planning/waterfall/"):
        assert client_for(ae).get(url).status_code == 403
        assert client_for(leader).get(url).status_code == 200
        assert client_for(finance).get(url).status_code == 200


def test_waterfall_page_shows_the_gap_and_the_stacked_target(domain_example, finance):
    response = client_for(finance).get(f"/planning/waterfall/?start={START}&end={END}&segment=smb&growth=20")
    page = text(response)

    assert response.status_code == 200
    assert "Start run rate $36,500" in page
    assert "= Committed $51,100 (+40.0% growth)" in page
    assert "− Run-rate gap $10,950 per year" in page
    assert "= Actual run rate $40,150 (+10.0% growth)" in page
    assert '"type": "waterfall"' in response.content.decode()
    # Stacked target row: SMB, ramp window 90 days (no cohort has levelled off) … 51,100 vs 21,900.
    assert "SMB 90 days 2 $29,200 1 $21,900 $51,100 $18,250 $21,900 $29,200" in page


def test_waterfall_page_validates_its_parameters(leader):
    page = text(client_for(leader).get("/planning/waterfall/?start=2026-06-30&end=2026-01-01&growth=x&segment=z"))
    assert "The start must be before the end." in page
    assert "Enter a number." in page
    assert "Select a valid choice." in page


def test_deal_desk_page_shows_estimate_beside_the_ae_estimate(smb_q1_cohort, leader):
    # The three SMB lands have only 4 months: no first year yet, so no similar accounts.
    page = text(
        client_for(leader).get(
            "/planning/deal-desk/?segment=smb&industry=Software&committed_arr=12000&ae_estimate=9000"
        )
    )
    assert "No similar accounts with a first year of usage" in page
    assert "AE estimate $9,000" in page


def test_deal_desk_page_lists_similar_accounts(meter, leader):
    # Five SMB Software lands signed 2025-01-10 at $24,000 ARR, each consuming $100 × k on
    # the 1st of each month for 12 months (k = 1..5): first years 1,200 × k; planned
    # $12,000 → scaled × 0.5: 600, 1,200, 1,800, 2,400, 3,000 → median 1,800, range
    # 1,200–2,400. Usage starts the day of signing's month (2025-01-01): TTFBE 0 days.
    for k in range(1, 6):
        acct = account(f"s{k}")
        contract(acct, signed=dt.date(2025, 1, 10), start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31), arr="24000")
        for m in range(1, 13):
            revenue(acct, meter, dt.date(2025, m, 1), str(100 * k))
    revenue(account("later"), meter, dt.date(2026, 1, 31), "1")  # data runs to 2026-01-31
    page = text(
        client_for(leader).get(
            "/planning/deal-desk/?segment=smb&industry=Software&committed_arr=12000&ae_estimate=3000"
        )
    )
    assert "Expected first-year consumption: $1,800" in page
    assert "Range (25th–75th percentile): $1,200 – $2,400" in page
    assert "Median time to first billable event: 0 days" in page
    assert "From 5 similar accounts (segment and industry)" in page
    assert "AE estimate $3,000 $1,200 versus the deal desk" in page
    assert "s5 Software 2025-01-10 $24,000 $6,000 $3,000 0" in page


def test_deal_desk_form_errors_are_shown_per_field(leader):
    page = text(client_for(leader).get("/planning/deal-desk/?segment=giant&committed_arr=lots&ae_estimate=-1"))
    assert "Select a valid choice. giant is not one of the available choices." in page
    assert "Enter a number." in page
    assert "Ensure this value is greater than or equal to 0." in page
    assert "Expected first-year consumption" not in page


def test_cohort_page_shows_the_chart_and_suggested_ramp_days(smb_q1_cohort, meter, leader):
    a, b, c = smb_q1_cohort
    for acct in (a, b, c):
        revenue(acct, meter, dt.date(2026, 5, 10), "1000" if acct != a else "-4000")
        revenue(acct, meter, dt.date(2026, 6, 10), "1010")
    revenue(a, meter, dt.date(2026, 6, 30), "0")  # data runs to 2026-06-30
    response = client_for(leader).get("/planning/cohorts/")
    page = text(response)
    # Accounts, level-off month, its window; three lands are too few to suggest it (fewer than 10).
    assert (
        "SMB 3 4 120 90 Based on 3 similar accounts (SMB lands); fewer than 10, so the segment default 90 days is used"
    ) in page
    assert "SUGGESTED RAMP_DAYS" not in page.upper() and "Suggested ramp (days)" in page
    assert "SMB 2026-Q1 3 4 10% · 50% · 90% · 100% · 100% · 101%" in page
    assert 'data-chart="cohort-ramps"' in response.content.decode()
    assert "levels off (month 4)" in response.content.decode()


def _query_count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_planning_page_query_counts_do_not_grow_with_accounts(domain_example, meter, finance):
    client = client_for(finance)
    urls = [
        "/planning/cohorts/",
        "/planning/deal-desk/?segment=smb&industry=Software&committed_arr=12000",
        f"/planning/waterfall/?start={START}&end={END}",
    ]
    before = [_query_count(client, url) for url in urls]
    for k in range(10):
        acct = account(f"more-{k}", segment=[Segment.SMB, Segment.MID_MARKET][k % 2])
        contract(acct, signed=dt.date(2026, 1, 5), start=dt.date(2026, 1, 5), end=dt.date(2026, 12, 31), arr="5000")
        daily(acct, meter, END, "3")
    assert [_query_count(client, url) for url in urls] == before
    assert max(before) <= 8


@pytest.fixture
def similar_lands(meter):
    """The five SMB Software lands above (expected first year for a $12,000 plan: $1,800)."""
    for k in range(1, 6):
        acct = account(f"s{k}")
        contract(acct, signed=dt.date(2025, 1, 10), start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31), arr="24000")
        for m in range(1, 13):
            revenue(acct, meter, dt.date(2025, m, 1), str(100 * k))
    revenue(account("later"), meter, dt.date(2026, 1, 31), "1")
    planned = account("newco")
    return contract(
        planned, signed=dt.date(2026, 1, 20), start=dt.date(2026, 2, 1), end=dt.date(2027, 1, 31), arr="12000"
    )


def test_a_planned_contract_fills_the_form_and_finance_stores_the_estimate_on_it(similar_lands, finance, leader):
    page = text(client_for(finance).get(f"/planning/deal-desk/?contract={similar_lands.external_id}"))
    assert "Expected first-year consumption: $1,800" in page
    assert f"Store on {similar_lands.external_id}" in page
    assert "Store on" not in text(client_for(leader).get(f"/planning/deal-desk/?contract={similar_lands.external_id}"))

    form = {"contract": similar_lands.external_id, "segment": "smb", "industry": "Software", "committed_arr": "12000"}
    assert client_for(leader).post("/planning/deal-desk/store/", form).status_code == 403
    response = client_for(finance).post("/planning/deal-desk/store/", form | {"ae_estimate": "2500"})
    assert response.status_code == 302
    similar_lands.refresh_from_db()
    assert similar_lands.deal_desk_estimate == Decimal("1800.00")
    assert similar_lands.ae_estimate == Decimal("2500.00")
    # The flat lands level off in month 2 (60 days), but 6 SMB lands (the five and newco) are
    # too few to suggest it: the default 90 days is stored.
    assert cohorts.suggested_ramp_days("smb", as_of=dt.date(2026, 1, 31)) == 60
    assert similar_lands.ramp_days == 90


def test_storing_on_an_unknown_contract_or_without_similar_accounts_stores_nothing(similar_lands, finance):
    client = client_for(finance)
    form = {"contract": "NOPE", "segment": "smb", "industry": "Software", "committed_arr": "12000"}
    response = client.post("/planning/deal-desk/store/", form, follow=True)
    assert "Nothing stored. contract: No contract with external id &#x27;NOPE&#x27;." in response.content.decode()
    # An enterprise contract: no enterprise lands (the form's segment is the contract's).
    big = contract(
        account("bigco", segment=Segment.ENTERPRISE),
        signed=dt.date(2026, 1, 20),
        start=dt.date(2026, 2, 1),
        end=dt.date(2027, 1, 31),
        arr="12000",
    )
    response = client.post("/planning/deal-desk/store/", form | {"contract": big.external_id}, follow=True)
    assert "No similar accounts: nothing stored" in response.content.decode()
    big.refresh_from_db()
    assert big.deal_desk_estimate is None


# --- Deal desk: a typed contract id, and a suggested ramp that fits the contract -------------


def test_typing_a_contract_id_into_the_form_estimates_from_the_contract(similar_lands, finance):
    # What a browser sends when only the contract id is typed: every other field empty.
    typed = {
        "contract": similar_lands.external_id,
        "segment": "",
        "industry": "",
        "committed_arr": "",
        "ae_estimate": "",
    }
    response = client_for(finance).get("/planning/deal-desk/", typed)
    page = text(response)

    assert "This field is required" not in page
    assert "Expected first-year consumption: $1,800" in page  # the contract's $12,000 SMB plan
    assert 'name="committed_arr" value="12000.00"' in response.content.decode()
    assert f"Store on {similar_lands.external_id}" in page
    # Values left in the form from another contract (or the select's first segment) give way to
    # the contract's, so what is stored on it is estimated for it.
    stale = typed | {"segment": "enterprise", "industry": "Retail", "committed_arr": "99000"}
    assert "Expected first-year consumption: $1,800" in text(client_for(finance).get("/planning/deal-desk/", stale))


def test_an_unknown_contract_or_a_form_without_segment_and_arr_says_what_is_missing(similar_lands, finance):
    page = text(
        client_for(finance).get("/planning/deal-desk/", {"contract": "NOPE", "segment": "", "committed_arr": ""})
    )
    assert "No contract with external id 'NOPE'." in page
    assert "Choose a segment" not in page  # the contract is what is wrong
    page = text(client_for(finance).get("/planning/deal-desk/", {"contract": "", "segment": "", "committed_arr": ""}))
    assert "Choose a segment, or give a contract." in page
    assert "Enter the planned committed ARR, or give a contract." in page


@pytest.fixture
def slow_smb_ramp(meter):
    """Ten SMB Software lands signed 2025-01-10 at $24,000 ARR, growing 10% a month for a year
    and flat from month 13 (Jan 2026) to month 15 (Mar 2026): they level off in month 13, a
    390-day window. Usage data runs to 2026-03-31. A planned SMB contract runs 2026-04-01 to
    2027-03-31: 365 days (its land, signed in March, adds an 11th SMB land)."""
    for k in range(1, 11):
        acct = account(f"slow{k}")
        contract(acct, signed=dt.date(2025, 1, 10), start=dt.date(2025, 1, 10), end=dt.date(2026, 1, 9), arr="24000")
        for m in range(1, 16):
            day = dt.date(2025 + (m - 1) // 12, (m - 1) % 12 + 1, 1)
            revenue(acct, meter, day, str((D(100 * k) * D("1.1") ** (min(m, 13) - 1)).quantize(D("0.01"))))
    revenue(account("later"), meter, dt.date(2026, 3, 31), "1")
    return contract(
        account("plan-smb"),
        signed=dt.date(2026, 3, 20),
        start=dt.date(2026, 4, 1),
        end=dt.date(2027, 3, 31),
        arr="24000",
    )


def test_the_suggested_ramp_never_exceeds_the_contracts_term(slow_smb_ramp, finance):
    assert cohorts.suggested_ramp_days("smb", as_of=dt.date(2026, 3, 31)) == 390
    client = client_for(finance)

    page = text(client.get("/planning/deal-desk/", {"contract": slow_smb_ramp.external_id}))
    assert "Suggested ramp (days) for SMB: 365 days" in page
    assert (
        "Based on 11 similar accounts (SMB lands), whose consumption levels off in month 13; the 390 days "
        "would outlast the contract's 365-day term, so the term is used."
    ) in page
    client.post("/planning/deal-desk/store/", {"contract": slow_smb_ramp.external_id})
    slow_smb_ramp.refresh_from_db()
    assert slow_smb_ramp.ramp_days == 365

    # Without a contract a one-year term is assumed; a two-year plan (730 days) keeps 390.
    plan = {"segment": "smb", "industry": "Software", "committed_arr": "24000"}
    assert "for SMB: 365 days" in text(client.get("/planning/deal-desk/", plan))
    assert "for SMB: 390 days" in text(client.get("/planning/deal-desk/", plan | {"term_months": "24"}))


def _pooled(accounts: int, level_off: int | None) -> cohorts.Cohort:
    return cohorts.Cohort(segment="mid-market", label="All", accounts=accounts, median=[], level_off=level_off)


def test_a_ramp_from_too_few_lands_or_no_level_off_is_the_default_and_says_why():
    thin = cohorts.suggest_ramp(_pooled(4, 13), segment_label="Mid-market", term_days=365)
    assert (thin.days, thin.from_cohorts) == (90, False)
    assert thin.reason == (
        "based on 4 similar accounts (Mid-market lands); fewer than 10, so the segment default 90 days is used"
    )
    rising = cohorts.suggest_ramp(_pooled(12, None), segment_label="Mid-market", term_days=365)
    assert rising.days == 90 and "have not levelled off yet" in rising.reason
    none = cohorts.suggest_ramp(None, segment_label="SMB", term_days=365)
    assert none.days == 90 and none.reason.startswith("based on 0 similar accounts")
    # A 60-day contract caps even the default.
    short = cohorts.suggest_ramp(_pooled(4, None), segment_label="SMB", term_days=60)
    assert short.days == 60 and short.reason.endswith(
        "the 90 days would outlast the contract's 60-day term, so the term is used"
    )
    enough = cohorts.suggest_ramp(_pooled(10, 7), segment_label="Mid-market", term_days=365)
    assert (enough.days, enough.from_cohorts) == (210, True)
