"""The CSM's running NRR against the CS bonus curve (comp.cs_outlook), hand-worked.

The curve is test_engine's: 90% → 0, 100% → 1.0, 120% → 1.5 of a $5,000 target bonus.
Four accounts, 30 days ending 2026-06-30 against the 30 days ending 2025-06-30:

| account | a year ago      | now             |
|---------|-----------------|-----------------|
| alpha   | 30 × 100 = 3000 | 30 × 110 = 3300 |
| beta    | 30 × 100 = 3000 | 30 × 120 = 3600 |
| gamma   | 30 × 200 = 6000 | 30 × 150 = 4500 |
| delta   | nothing         | 30 × 50 = 1500  |  (new: not in NRR)

NRR = (3300 + 3600 + 4500) / (3000 + 3000 + 6000) = 11400 / 12000 = 0.95; on the curve
0 + 1.0 × (0.95 − 0.90) / 0.10 = 0.5 → 0.5 × $5,000 = $2,500.00. The next point, 100%,
pays $5,000.00.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import OwnerRole
from comp.cs_outlook import cs_outlooks
from comp.engine import run_comp
from comp.models import LedgerLine
from revops.models import Role
from tests.comp.test_engine import CS, D, PlanType, assign, make_account, make_meter, make_plan, own, spend

pytestmark = pytest.mark.django_db
AS_OF = D(2026, 6, 30)


@pytest.fixture
def cora(make_user):
    return make_user(Role.CSM, name="Cora Success", email="cora@example.test")


@pytest.fixture
def book(cora):
    meter = make_meter("api-calls")
    accounts = {}
    for name, then, now in (
        ("alpha", "100", "110"),
        ("beta", "100", "120"),
        ("gamma", "200", "150"),
        ("delta", None, "50"),
    ):
        account = accounts[name] = make_account(name)
        own(account, cora, role=OwnerRole.CSM)
        if then:
            spend(account, meter, D(2025, 6, 1), D(2025, 6, 30), then)
        spend(account, meter, D(2026, 6, 1), D(2026, 6, 30), now)
    # Someone else's account: not in Cora's book.
    other = make_account("other")
    spend(other, meter, D(2025, 6, 1), D(2025, 6, 30), "999")
    return accounts


def test_the_running_nrr_projects_the_bonus_on_the_curve(cora, book):
    assign(cora, make_plan(PlanType.CS, CS), period="year")
    (o,) = cs_outlooks(person=cora, as_of=AS_OF)
    assert (o.period_start, o.period_end, o.final, o.days_left) == (D(2026, 1, 1), D(2026, 12, 31), False, 184)
    assert (o.book, o.counted, o.revenue_now, o.revenue_year_ago) == (4, 3, Decimal("11400"), Decimal("12000"))
    assert o.nrr == Decimal("0.9500")
    assert o.multiplier == Decimal("0.5")
    assert o.projected == Decimal("2500.00")
    assert (o.next_point.nrr, o.next_point.payout, o.next_point.amount) == (
        Decimal("1.00"),
        Decimal("1.0"),
        Decimal("5000.00"),
    )
    assert [(p.nrr, p.amount, p.reached) for p in o.curve] == [
        (Decimal("0.90"), Decimal("0.00"), True),
        (Decimal("1.00"), Decimal("5000.00"), False),
        (Decimal("1.20"), Decimal("7500.00"), False),
    ]
    assert [(m.account.external_id, m.change) for m in o.up] == [("beta", Decimal("600")), ("alpha", Decimal("300"))]
    assert [(m.account.external_id, m.change) for m in o.down] == [("gamma", Decimal("-1500"))]
    assert [a.external_id for a in o.new_accounts] == ["delta"]
    # Month ends of the period so far, then today; no revenue a year before January–May.
    assert [(h.day, h.accounts, h.nrr) for h in o.history] == [
        (D(2026, 1, 31), 4, None),
        (D(2026, 2, 28), 4, None),
        (D(2026, 3, 31), 4, None),
        (D(2026, 4, 30), 4, None),
        (D(2026, 5, 31), 4, None),
        (AS_OF, 4, Decimal("0.9500")),
    ]


def test_on_the_period_end_the_outlook_is_the_line_the_engine_pays(cora, book):
    assignment = assign(cora, make_plan(PlanType.CS, CS), period="quarter")
    (o,) = cs_outlooks(person=cora, as_of=AS_OF)
    assert (o.period_start, o.period_end, o.final, o.projected) == (D(2026, 4, 1), AS_OF, True, Decimal("2500.00"))
    run_comp(period=D(2026, 6, 1))
    line = LedgerLine.objects.get(key=f"cs:{assignment.pk}:2026-04-01")
    assert (line.amount, line.inputs["nrr"], line.inputs["payout"]) == (o.projected, str(o.nrr), str(o.multiplier))


def test_above_the_curve_it_is_flat_and_without_a_year_of_history_it_pays_nothing(cora, make_user):
    meter = make_meter("api-calls")
    grown, young = make_account("grown"), make_account("young")
    own(grown, cora, role=OwnerRole.CSM)
    spend(grown, meter, D(2025, 6, 1), D(2025, 6, 30), "100")
    spend(grown, meter, D(2026, 6, 1), D(2026, 6, 30), "130")  # 130%: beyond the last point
    assign(cora, make_plan(PlanType.CS, CS), period="year")
    (o,) = cs_outlooks(person=cora, as_of=AS_OF)
    assert (o.nrr, o.multiplier, o.projected, o.next_point) == (
        Decimal("1.3000"),
        Decimal("1.5"),
        Decimal("7500.00"),
        None,
    )
    newcomer = make_user(Role.CSM, name="New Csm", email="new@example.test")
    own(young, newcomer, role=OwnerRole.CSM)
    spend(young, meter, D(2026, 6, 1), D(2026, 6, 30), "100")
    assign(newcomer, make_plan(PlanType.CS, CS), period="year")
    (n,) = cs_outlooks(person=newcomer, as_of=AS_OF)
    assert (n.nrr, n.multiplier, n.projected, n.counted, n.book) == (None, 0, Decimal("0.00"), 0, 1)
    assert cs_outlooks(person=make_user(Role.CSM, name="No Plan", email="np@example.test"), as_of=AS_OF) == []


def test_the_outlook_page_and_the_home_panel_say_it_in_words(
    cora, book, client, make_user, django_assert_max_num_queries
):
    """Today's figures (the page reads yesterday): usage is laid on the 30 days ending
    yesterday and the 30 days ending a year before, 110 a day against 100 (NRR 110%)."""
    import datetime as dt

    from revops.clock import yesterday_utc

    as_of = yesterday_utc()
    meter = make_meter("calls-now")
    account = make_account("now-co")
    own(account, cora, role=OwnerRole.CSM)
    spend(account, meter, as_of - dt.timedelta(days=394), as_of - dt.timedelta(days=365), "100")
    spend(account, meter, as_of - dt.timedelta(days=29), as_of, "110")
    assign(cora, make_plan(PlanType.CS, CS), start=D(2020, 1, 1), period="year")
    (o,) = cs_outlooks(person=cora, as_of=as_of)
    client.force_login(cora)
    with django_assert_max_num_queries(40):
        page = client.get(f"/comp/statements/{cora.pk}/nrr/")
    text = " ".join(page.content.decode().split())
    assert page.status_code == 200
    assert f"The NRR of the book is <strong>{(o.nrr * 100).quantize(Decimal('0.1'))}%</strong>" in text
    assert f"= <strong>${o.projected:,.2f}</strong> if NRR holds" in text
    assert "None" not in text
    panel = client.get("/comp/home/pay/", HTTP_HX_REQUEST="true")
    assert f"= <strong>${o.projected:,.2f}</strong> if it holds to Dec 31" in " ".join(panel.content.decode().split())
    # Another CSM and an AE may not; finance may (as statements).
    for who, status in (
        (make_user(Role.CSM, email="c2@example.test"), 404),
        (make_user(Role.AE, email="a@example.test"), 404),
    ):
        client.force_login(who)
        assert client.get(f"/comp/statements/{cora.pk}/nrr/").status_code == status
    client.force_login(make_user(Role.AE, email="a2@example.test"))
    assert client.get(f"/comp/statements/{client.session['_auth_user_id']}/nrr/").status_code == 404  # no CS plan
