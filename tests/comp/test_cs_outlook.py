"""The CSM's running NRR against the CS bonus curve (comp.cs_outlook), hand-worked.

The curve has four points, with a flat stretch: (0.90, 0), (1.00, 1.0), (1.05, 1.0),
(1.20, 1.6) × a $10,000 target bonus. Cora's book, 30 days ending 2026-06-30 against the
30 days ending 2025-06-30 (each row one day's revenue):

| account     | a year ago        | now               | change  | share  | adds to NRR |
|-------------|-------------------|-------------------|---------|--------|-------------|
| alpha       | 30 × 100 = 3,000  | 30 × 150 = 4,500  | +1,500  | +125%  | +12.5%      |
| beta        | 30 × 150 = 4,500  | 30 × 180 = 5,400  |   +900  |  +75%  |  +7.5%      |
| gamma       | 30 × 100 = 3,000  | 30 × 110 = 3,300  |   +300  |  +25%  |  +2.5%      |
| churned     | 30 ×  50 = 1,500  | nothing           | −1,500  | −125%  | −12.5%      |
| delta       | nothing           | 30 × 40 = 1,200   | new since: not in NRR            |

NRR = 13,200 / 12,000 = 1.1000 (the book's change +1,200; shares are of that, "adds to
NRR" is the change ÷ 12,000, adding up to +10%). On the curve, between (1.05, 1.0) and
(1.20, 1.6): 1.0 + 0.6 × 0.05 / 0.15 = 1.2 → 1.2 × $10,000 = $12,000.00. The next point,
120%, pays 1.6 × $10,000 = $16,000.00, and needs 1.20 × 12,000 − 13,200 = $1,200.00 more
30-day revenue. Not in the book: alpha's division (owned by another CSM; own rows only,
so its revenue is not alpha's) and another CSM's account.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, OwnerRole
from comp.cs_outlook import cs_outlook
from comp.engine import run_comp
from comp.models import LedgerLine
from revops.clock import yesterday_utc
from revops.models import Role
from tests.comp.test_engine import D, PlanType, assign, make_account, make_meter, make_plan, own, spend
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db
AS_OF = D(2026, 6, 30)
CURVE = {
    "target_bonus": "10000",
    "curve": [
        {"nrr": "0.90", "payout": "0"},
        {"nrr": "1.00", "payout": "1.0"},
        {"nrr": "1.05", "payout": "1.0"},
        {"nrr": "1.20", "payout": "1.6"},
    ],
}


@pytest.fixture
def cora(make_user):
    return make_user(Role.CSM, name="Cora Success", email="cora@example.test")


@pytest.fixture
def other_csm(make_user):
    return make_user(Role.CSM, name="Olly Other", email="olly@example.test")


@pytest.fixture
def meter(db):
    return make_meter("api-calls")


def lay_book(cora, other_csm, meter, *, now_end: dt.date) -> dict[str, Account]:
    """The table above, with the 30-day windows ending ``now_end`` and 365 days before."""
    year_ago_end = now_end - dt.timedelta(days=365)
    accounts = {}
    for name, then, now in (
        ("alpha", "100", "150"),
        ("beta", "150", "180"),
        ("gamma", "100", "110"),
        ("churned", "50", None),
        ("delta", None, "40"),
    ):
        account = accounts[name] = make_account(name)
        own(account, cora, role=OwnerRole.CSM, start=D(2026, 4, 1) if name == "delta" else D(2025, 1, 1))
        if then:
            spend(account, meter, year_ago_end - dt.timedelta(days=29), year_ago_end, then)
        if now:
            spend(account, meter, now_end - dt.timedelta(days=29), now_end, now)
    division = Account.objects.create(external_id="alpha-emea", name="Alpha EMEA", parent=accounts["alpha"])
    own(division, other_csm, role=OwnerRole.CSM)
    spend(division, meter, year_ago_end - dt.timedelta(days=29), year_ago_end, "1000")
    elsewhere = make_account("elsewhere")
    own(elsewhere, other_csm, role=OwnerRole.CSM)
    spend(elsewhere, meter, now_end - dt.timedelta(days=29), now_end, "999")
    return accounts


@pytest.fixture
def book(cora, other_csm, meter):
    accounts = lay_book(cora, other_csm, meter, now_end=AS_OF)
    # March, for the month-end history: alpha 100 → 80 a day (NRR 0.8000 on Mar 31).
    spend(accounts["alpha"], meter, D(2025, 3, 2), D(2025, 3, 31), "100")
    spend(accounts["alpha"], meter, D(2026, 3, 2), D(2026, 3, 31), "80")
    return accounts


def test_the_running_nrr_projects_the_bonus_on_the_curve(cora, book):
    assign(cora, make_plan(PlanType.CS, CURVE), period="year")
    (o,) = cs_outlook(cora, AS_OF)
    assert (o.period_start, o.period_end, o.as_of, o.final, o.days_left) == (
        D(2026, 1, 1),
        D(2026, 12, 31),
        AS_OF,
        False,
        184,
    )
    assert (o.book, o.counted, o.window_days) == (5, 4, 30)
    assert (o.revenue_now, o.revenue_year_ago, o.change) == (Decimal("13200"), Decimal("12000"), Decimal("1200"))
    assert o.nrr == Decimal("1.1000")
    assert o.multiplier == Decimal("1.2")
    assert o.target_bonus == Decimal("10000")
    assert o.projected == Decimal("12000.00")
    assert (o.next_point.nrr, o.next_point.payout, o.next_point.amount) == (
        Decimal("1.20"),
        Decimal("1.6"),
        Decimal("16000.00"),
    )
    assert o.next_revenue_needed == Decimal("1200.00")
    assert [(p.nrr, p.payout, p.amount, p.reached) for p in o.curve] == [
        (Decimal("0.90"), Decimal("0"), Decimal("0.00"), True),
        (Decimal("1.00"), Decimal("1.0"), Decimal("10000.00"), True),
        (Decimal("1.05"), Decimal("1.0"), Decimal("10000.00"), True),
        (Decimal("1.20"), Decimal("1.6"), Decimal("16000.00"), False),
    ]
    assert [(m.account.external_id, m.year_ago, m.now, m.change, m.share, m.points) for m in o.up] == [
        ("alpha", Decimal("3000"), Decimal("4500"), Decimal("1500"), Decimal("1.2500"), Decimal("0.1250")),
        ("beta", Decimal("4500"), Decimal("5400"), Decimal("900"), Decimal("0.7500"), Decimal("0.0750")),
        ("gamma", Decimal("3000"), Decimal("3300"), Decimal("300"), Decimal("0.2500"), Decimal("0.0250")),
    ]
    assert [(m.account.external_id, m.change, m.share, m.points) for m in o.down] == [
        ("churned", Decimal("-1500"), Decimal("-1.2500"), Decimal("-0.1250"))
    ]
    assert sum(m.points for m in o.up + o.down) == o.nrr - 1
    assert [a.external_id for a in o.new_accounts] == ["delta"]
    # Month ends of the period so far, each with the book as owned that day, then today.
    assert [(h.day, h.accounts, h.nrr) for h in o.history] == [
        (D(2026, 1, 31), 4, None),
        (D(2026, 2, 28), 4, None),
        (D(2026, 3, 31), 4, Decimal("0.8000")),
        (D(2026, 4, 30), 5, None),
        (D(2026, 5, 31), 5, None),
        (AS_OF, 5, Decimal("1.1000")),
    ]


@pytest.mark.parametrize(
    ("then", "now", "nrr", "multiplier", "projected", "next_nrr", "next_amount", "needed"),
    [
        # 102%: on the flat stretch; 105% pays no more, so the next point is 120%:
        # 1.20 × 3,000 − 3,060 = 540.
        ("100", "102", "1.0200", "1.0", "10000.00", "1.20", "16000.00", "540.00"),
        # 85%: below the curve, flat at 0; 90% pays 0 too, so the next is 100%: 3,000 − 2,550.
        ("100", "85", "0.8500", "0", "0.00", "1.00", "10000.00", "450.00"),
        # 93%: 0 + 1.0 × 0.03 / 0.10 = 0.3 → $3,000.00; 100% needs 3,000 − 2,790.
        ("100", "93", "0.9300", "0.3", "3000.00", "1.00", "10000.00", "210.00"),
        # 130%: beyond the last point, flat at 1.6; nothing ahead pays more.
        ("100", "130", "1.3000", "1.6", "16000.00", None, None, None),
    ],
)
def test_the_curve_between_beyond_and_on_its_flat_stretch(
    cora, meter, then, now, nrr, multiplier, projected, next_nrr, next_amount, needed
):
    account = make_account("solo")
    own(account, cora, role=OwnerRole.CSM)
    spend(account, meter, D(2025, 6, 1), D(2025, 6, 30), then)
    spend(account, meter, D(2026, 6, 1), D(2026, 6, 30), now)
    assign(cora, make_plan(PlanType.CS, CURVE), period="year")
    (o,) = cs_outlook(cora, AS_OF)
    assert (o.nrr, o.multiplier, o.projected) == (Decimal(nrr), Decimal(multiplier), Decimal(projected))
    if next_nrr is None:
        assert (o.next_point, o.next_revenue_needed) == (None, None)
    else:
        assert (o.next_point.nrr, o.next_point.amount, o.next_revenue_needed) == (
            Decimal(next_nrr),
            Decimal(next_amount),
            Decimal(needed),
        )


def test_without_a_year_of_history_there_is_no_nrr_and_it_pays_nothing(cora, meter, make_user):
    young = make_account("young")
    own(young, cora, role=OwnerRole.CSM)
    spend(young, meter, D(2026, 6, 1), D(2026, 6, 30), "100")
    assign(cora, make_plan(PlanType.CS, CURVE), period="year")
    (o,) = cs_outlook(cora, AS_OF)
    assert (o.nrr, o.multiplier, o.projected, o.counted, o.book, o.next_point) == (
        None,
        Decimal(0),
        Decimal("0.00"),
        0,
        1,
        None,
    )
    assert [a.external_id for a in o.new_accounts] == ["young"]
    # No CS plan in force: no outlook (an ended one neither).
    assert cs_outlook(make_user(Role.CSM, email="np@example.test"), AS_OF) == []
    ended = make_user(Role.CSM, email="ended@example.test")
    assign(ended, make_plan(PlanType.CS, CURVE), end=D(2026, 3, 31), period="quarter")
    assert cs_outlook(ended, AS_OF) == []


def test_on_the_period_end_the_outlook_is_the_line_the_engine_pays(cora, book):
    assignment = assign(cora, make_plan(PlanType.CS, CURVE), period="quarter")
    (o,) = cs_outlook(cora, AS_OF)
    assert (o.period_start, o.period_end, o.final, o.days_left) == (D(2026, 4, 1), AS_OF, True, 0)
    assert (o.nrr, o.projected) == (Decimal("1.1000"), Decimal("12000.00"))
    run_comp(period=D(2026, 6, 1))
    line = LedgerLine.objects.get(key=f"cs:{assignment.pk}:2026-04-01")
    assert line.amount == o.projected == Decimal("12000.00")
    assert (line.inputs["nrr"], line.inputs["payout"], line.inputs["book_accounts"]) == (
        str(o.nrr),
        str(o.multiplier),
        o.book,
    )


def test_the_movers_are_the_ten_largest_each_way_in_a_bounded_number_of_queries(cora, meter):
    """Book of 3, then of 27 accounts: the same number of queries. Account k (1–12) grows
    by k a day (30 × k), account k (13–24) shrinks by k − 12, three stay flat."""
    assign(cora, make_plan(PlanType.CS, CURVE), period="quarter")

    def add(name: str, then: str, now: str) -> None:
        account = make_account(name)
        own(account, cora, role=OwnerRole.CSM)
        spend(account, meter, D(2025, 6, 1), D(2025, 6, 30), then)
        spend(account, meter, D(2026, 6, 1), D(2026, 6, 30), now)

    for k in range(3):
        add(f"flat-{k}", "100", "100")
    with CaptureQueriesContext(connection) as small:
        cs_outlook(cora, AS_OF)
    for k in range(1, 13):
        add(f"up-{k:02}", "100", str(100 + k))
    for k in range(1, 13):
        add(f"down-{k:02}", "100", str(100 - k))
    with CaptureQueriesContext(connection) as large:
        (o,) = cs_outlook(cora, AS_OF)
    # Quarter to date: Apr 30, May 31, and today, one NRR read each; plus assignments,
    # versions, ownerships and the book's names.
    assert len(small) == len(large) == 7
    assert o.book == 27
    assert [(m.account.external_id, m.change) for m in o.up] == [
        (f"up-{k:02}", Decimal(30 * k)) for k in range(12, 2, -1)
    ]
    assert [(m.account.external_id, m.change) for m in o.down] == [
        (f"down-{k:02}", Decimal(-30 * k)) for k in range(12, 2, -1)
    ]


@pytest.fixture
def today_book(cora, other_csm, meter):
    """The hand-worked book with its windows ending yesterday (what the pages read), on a
    yearly assignment."""
    accounts = lay_book(cora, other_csm, meter, now_end=yesterday_utc())
    assign(cora, make_plan(PlanType.CS, CURVE), start=D(2020, 1, 1), period="year")
    return accounts


def page_text(response) -> str:
    return " ".join(response.content.decode().split())


def test_the_outlook_page_says_it_in_words_with_the_curve_drawn(
    cora, today_book, client, django_assert_max_num_queries
):
    as_of = yesterday_utc()
    client.force_login(cora)
    # 19 at most (in December): session and user 3, assignments, versions, ownerships and
    # the book's names 4, one NRR read per month end of the year so far and today ≤ 12.
    with django_assert_max_num_queries(19):
        page = client.get(f"/comp/statements/{cora.pk}/nrr/")
    assert page.status_code == 200
    text = page_text(page)
    assert (
        "Your book's NRR is <strong>110.0%</strong> (revenue of the 4 accounts you own now that had revenue "
        "a year ago, over the last 30 days: $13,200.00, vs the same accounts in the 30 days ending a year "
        "earlier: $12,000.00);" in text
    )
    if as_of == D(as_of.year, 12, 31):
        assert (
            "the period has ended: the curve pays 1.2× your $10,000.00 target bonus = <strong>$12,000.00</strong>"
            in text
        )
    else:
        assert (
            f"at period end {as_of.year}-12-31 the curve pays 1.2× your $10,000.00 target bonus = "
            "<strong>$12,000.00</strong> if NRR holds" in text
        )
    assert (
        "The next point of the curve, 120.0% NRR, pays 1.6× = <strong>$16,000.00</strong>: the same accounts' "
        "30-day revenue $1,200.00 higher than now." in text
    )
    assert "NRR in %, money in $." in text and "a parent's figures leave out its divisions" in text
    # The curve table, the movers (linked to their accounts), the accounts left out of NRR.
    assert '<td class="num">105.0%</td><td class="num">1×</td><td class="num">$10,000.00</td>' in text
    assert (
        '<a href="/accounts/alpha/">Alpha</a></td><td class="num">$3,000.00</td><td class="num">$4,500.00</td>'
        '<td class="num tone-good">$1,500.00</td><td class="num">+125.0%</td><td class="num">+12.5%</td>'
    ) in text
    assert '<td class="num tone-bad">−$1,500.00</td><td class="num">−125.0%</td><td class="num">−12.5%</td>' in text
    assert 'Not in NRR (no revenue a year ago): <a href="/accounts/delta/">Delta</a>.' in text
    # The Plotly figure: the curve (flat stretches drawn past both ends) and today's point.
    assert 'data-chart="cs-curve-0"' in text and "vendor/plotly-finance-3.7.0.min.js" in text
    figure = page.context["rows"][0][1][1]
    assert figure["data"][0]["y"] == [0.0, 0.0, 10000.0, 10000.0, 16000.0, 16000.0]
    assert (figure["data"][1]["x"], figure["data"][1]["y"]) == ([110.0], [12000.0])
    assert "None" not in text and "NaN" not in text


def test_the_home_pay_panel_and_the_statements_index_lead_to_it(cora, today_book, client, make_user):
    as_of = yesterday_utc()
    client.force_login(cora)
    panel = page_text(client.get("/comp/home/pay/", HTTP_HX_REQUEST="true"))
    holds = "" if as_of == D(as_of.year, 12, 31) else " if it holds to Dec 31"
    assert (
        f"CS bonus, Jan 1 – Dec 31, {as_of.year}: book NRR <strong>110.0%</strong> → the curve pays 1.2× the "
        f"$10,000.00 target = <strong>$12,000.00</strong>{holds}; 120.0% would pay $16,000.00" in panel
    )
    assert f'<a href="/comp/statements/{cora.pk}/nrr/">My NRR against the curve →</a>' in panel
    # No statement lines yet: the index says where the bonus is instead.
    index = page_text(client.get("/comp/statements/"))
    assert "No statements yet." in index
    assert f'until then, <a href="/comp/statements/{cora.pk}/nrr/">your CS bonus outlook</a> shows' in index
    # A CSM without a CS plan: no outlook to link to, on either.
    planless = make_user(Role.CSM, email="planless@example.test")
    client.force_login(planless)
    assert "/nrr/" not in client.get("/comp/statements/").content.decode()
    assert "CS bonus" not in client.get("/comp/home/pay/", HTTP_HX_REQUEST="true").content.decode()


def test_who_may_see_a_csms_outlook(cora, today_book, client, make_user):
    """Themself and their manager (and leaders, finance and admins: the authorization
    matrix); another CSM or an AE may not, nor anyone the page of a person without a CS plan."""
    lead = make_user(Role.CSM, email="lead@example.test")
    cora.team = TeamFactory(name="CS West", manager=lead)
    cora.save()
    url = f"/comp/statements/{cora.pk}/nrr/"
    for who, status in (
        (cora, 200),
        (lead, 200),
        (make_user(Role.LEADER, email="leader@example.test"), 200),
        (make_user(Role.CSM, email="c2@example.test"), 404),
        (make_user(Role.AE, email="a@example.test"), 404),
    ):
        client.force_login(who)
        assert client.get(url).status_code == status, who.email
    client.force_login(lead)
    page = page_text(client.get(url))
    assert "Cora Success's CS bonus outlook" in page
    assert "Cora Success's book's NRR is <strong>110.0%</strong>" in page
    assert client.get(f"/comp/statements/{lead.pk}/nrr/").status_code == 404  # no CS plan


def test_a_csms_own_statement_points_at_the_bonus_outlook_not_the_land_pay_outlook(cora, client):
    from comp.periods import month_start
    from revops.clock import today_utc

    assign(cora, make_plan(PlanType.CS, CURVE), start=D(2020, 1, 1), period="year")
    client.force_login(cora)
    page = client.get(f"/comp/statements/{cora.pk}/{month_start(today_utc()):%Y-%m}/").content.decode()
    assert f'href="/comp/statements/{cora.pk}/nrr/"' in page
    assert 'id="estimator"' not in page
