# ruff: noqa: F811 -- the engine tests' fixtures are imported by name and requested as arguments
"""The pay outlook (comp.outlook): every gate case and the 12-month timeline, hand-worked.

The deal is test_engine's: Avery lands Acme with a $240,000 commit on 2026-01-01 (two
years), 10% base rate paid 50% at signature and 50% at day 90 (2026-04-01) if burn ≥ 25%,
clawed back at day 365 (2027-01-01) if burn < 40%. Burn = revenue of the 30 days ending
the day × 365/30 ÷ the commit, to 4 places: $100/day → 15.21%, $200/day → 30.42%,
$400/day → 60.83%. Each share is $240,000 × 10% × 50% = $12,000.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from comp.models import LedgerLine
from comp.outlook import (
    CLAWBACK,
    FORFEITED,
    KEPT,
    PAID,
    PAYS,
    RECHECKED,
    RELEASED,
    RELEASES,
    WILL_HOLD,
    gate_outlook,
    pay_timeline,
)
from comp.periods import add_months, month_start
from revops.clock import yesterday_utc
from tests.comp.test_engine import (  # noqa: F401 (fixtures)
    JAN,
    LAND,
    D,
    PlanType,
    acme,
    assign,
    avery,
    contract,
    land_deal,
    make_account,
    make_plan,
    meter,
    own,
    run,
    spend,
)

pytestmark = pytest.mark.django_db
TWELVE = Decimal("12000.00")


def rows(gates):
    return [(g.label, g.on, g.status, g.amount, g.at_stake, g.statement, g.burn_now, g.burn_needed) for g in gates]


def run_months(first, last):
    month = first
    while month <= last:
        run(month)
        month = add_months(month, 1)


def test_a_checkpoint_ahead_that_todays_burn_clears_pays_and_the_clawback_would_take_it_back(
    land_deal, avery, acme, meter
):
    # Feb 14 – Mar 15 at $200/day: 30.42% on Mar 15. Clears the 25% floor, not the 40% one.
    spend(acme, meter, D(2026, 2, 14), D(2026, 3, 15), "200")
    run_months(JAN, D(2026, 2, 1))
    assert rows(gate_outlook(person=avery, as_of=D(2026, 3, 15))) == [
        ("Day-90 share", D(2026, 4, 1), PAYS, TWELVE, TWELVE, D(2026, 4, 1), Decimal("0.3042"), Decimal("0.25")),
        (
            "Day-365 clawback (hard)",
            D(2027, 1, 1),
            CLAWBACK,
            -TWELVE,
            TWELVE,
            D(2027, 1, 1),
            Decimal("0.3042"),
            Decimal("0.40"),
        ),
    ]
    timeline = pay_timeline(person=avery, as_of=D(2026, 3, 15))
    assert [m.month for m in timeline.months] == [add_months(D(2026, 3, 1), k) for k in range(12)]
    # The signature share is in the ledger already (January's run): nothing more for it.
    assert {m.month: m.total for m in timeline.months if m.items} == {D(2026, 4, 1): TWELVE, D(2027, 1, 1): -TWELVE}
    april = next(m for m in timeline.months if m.month == D(2026, 4, 1))
    assert [(i.account, i.label, i.amount, i.gate.burn_needed) for i in april.items] == [
        (acme, "Day-90 share", TWELVE, Decimal("0.25"))
    ]
    assert timeline.total == 0
    assert timeline.accounts == [acme]


def test_a_checkpoint_ahead_that_todays_burn_does_not_clear_would_be_held_and_nothing_is_clawed_back(
    land_deal, avery, acme, meter
):
    spend(acme, meter, D(2026, 2, 14), D(2026, 3, 15), "100")  # 15.21%
    run_months(JAN, D(2026, 2, 1))
    gates = gate_outlook(person=avery, as_of=D(2026, 3, 15))
    # Held on Apr 1 and never released at 15.21%: forfeited on day 365, when nothing paid
    # is left to claw back, so the clawback has no row.
    assert rows(gates) == [
        ("Day-90 share", D(2026, 4, 1), WILL_HOLD, 0, TWELVE, None, Decimal("0.1521"), Decimal("0.25")),
    ]
    assert "forfeited if burn has not reached 25.0% by 2027-01-01" in gates[0].says
    timeline = pay_timeline(person=avery, as_of=D(2026, 3, 15))
    assert timeline.total == 0 and not any(m.items for m in timeline.months)
    april = next(m for m in timeline.months if m.month == D(2026, 4, 1))
    assert [(g.label, g.at_stake) for g in april.decisions] == [("Day-90 share", TWELVE)]


def test_a_held_share_is_rechecked_each_month_end_while_burn_stays_under_the_floor(land_deal, avery, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 20), "100")
    run_months(JAN, D(2026, 3, 1))
    gates = gate_outlook(person=avery, as_of=D(2026, 4, 20))
    # Held on Apr 1 (15.21%); next re-check Apr 30; still 15.21% today.
    assert rows(gates) == [
        ("Day-90 share", D(2026, 4, 30), RECHECKED, 0, TWELVE, None, Decimal("0.1521"), Decimal("0.25")),
    ]
    assert "next 2026-04-30" in gates[0].says and "by 2027-01-01" in gates[0].says


def test_a_held_share_is_released_at_the_next_month_end_when_todays_burn_clears_it(land_deal, avery, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 30), "100")
    spend(acme, meter, D(2026, 5, 1), D(2026, 5, 20), "200")
    run_months(JAN, D(2026, 4, 1))
    # Today (May 20): Apr 21 – May 20 = 10 × $100 + 20 × $200 = $5,000 → $60,833.33 → 25.35%.
    assert rows(gate_outlook(person=avery, as_of=D(2026, 5, 20))) == [
        ("Day-90 share", D(2026, 5, 31), RELEASES, TWELVE, TWELVE, D(2026, 5, 1), Decimal("0.2535"), Decimal("0.25")),
        (
            "Day-365 clawback (hard)",
            D(2027, 1, 1),
            CLAWBACK,
            -TWELVE,
            TWELVE,
            D(2027, 1, 1),
            Decimal("0.2535"),
            Decimal("0.40"),
        ),
    ]
    timeline = pay_timeline(person=avery, as_of=D(2026, 5, 20))
    assert {m.month: m.total for m in timeline.months if m.items} == {D(2026, 5, 1): TWELVE, D(2027, 1, 1): -TWELVE}
    may = timeline.months[0]
    assert [(i.label, i.amount) for i in may.items] == [("Day-90 share released", TWELVE)]


def test_a_released_share_is_kept_when_todays_burn_clears_the_clawback_floor(land_deal, avery, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 30), "100")
    spend(acme, meter, D(2026, 5, 1), D(2026, 6, 15), "400")  # May 31: 60.83%, released
    run_months(JAN, D(2026, 5, 1))
    gates = gate_outlook(person=avery, as_of=D(2026, 6, 15))
    assert rows(gates) == [
        ("Day-90 share", D(2026, 5, 31), RELEASED, TWELVE, TWELVE, D(2026, 5, 1), Decimal("0.6083"), Decimal("0.25")),
        ("Day-365 clawback (hard)", D(2027, 1, 1), KEPT, 0, TWELVE, None, Decimal("0.6083"), Decimal("0.40")),
    ]
    assert not gates[0].pending and gates[1].pending
    # The release is in the ledger (May's run): the timeline adds nothing.
    assert pay_timeline(person=avery, as_of=D(2026, 6, 15)).total == 0


def test_a_cleared_share_with_the_clawback_passed_leaves_nothing_ahead(land_deal, avery, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")  # paid at day 90
    spend(acme, meter, D(2026, 12, 3), D(2027, 1, 5), "200")  # 30.42% on day 365: clawed back (hard)
    run_months(JAN, D(2027, 1, 1))
    # Decided and on January 2027's statement: nothing is pending, so the deal has no rows.
    assert gate_outlook(person=avery, as_of=D(2027, 1, 5)) == []
    assert pay_timeline(person=avery, as_of=D(2027, 1, 5)).total == 0


def test_a_soft_clawback_decided_is_still_ahead_until_the_next_quarter_deducts_it(avery, acme, meter):
    """Two gated shares: day 60 cleared and paid, day 90 held and forfeited; the soft
    clawback on day 365 takes the paid one back from the quarter after (April 2027)."""
    plan = {
        **LAND,
        "schedule": [
            {"at_day": 0, "share": "0.5"},
            {"at_day": 60, "share": "0.25", "burn_floor": "0.25"},
            {"at_day": 90, "share": "0.25", "burn_floor": "0.25"},
        ],
        "clawback": {"at_day": 365, "burn_floor": "0.40", "mode": "soft"},
    }
    assign(avery, make_plan(PlanType.LAND, plan))
    own(acme, avery)
    contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))
    spend(acme, meter, D(2026, 1, 31), D(2026, 3, 2), "200")  # day 60 (Mar 2): 30.42%
    spend(acme, meter, D(2026, 3, 3), D(2027, 1, 10), "100")  # day 90 and after: 15.21%
    run_months(JAN, D(2027, 1, 1))
    six = Decimal("6000.00")
    assert rows(gate_outlook(person=avery, as_of=D(2027, 1, 10))) == [
        ("Day-60 share", D(2026, 3, 2), PAID, six, six, D(2026, 3, 1), Decimal("0.1521"), Decimal("0.25")),
        (
            "Day-365 clawback (soft)",
            D(2027, 1, 1),
            CLAWBACK,
            -six,
            six,
            D(2027, 4, 1),
            Decimal("0.1521"),
            Decimal("0.40"),
        ),
        ("Day-90 share", D(2027, 1, 1), FORFEITED, 0, six, None, Decimal("0.1521"), Decimal("0.25")),
    ]
    timeline = pay_timeline(person=avery, as_of=D(2027, 1, 10))
    assert {m.month: m.total for m in timeline.months if m.items} == {D(2027, 4, 1): -six}


def test_the_issues_two_deals_no_clawback_at_97_percent_and_11300_lost_at_32_percent(avery, meter):
    """Regression: at 97% burn the estimator said "clears · pays −$1,800"; at 32% it said
    "held · needs 40.0%" for a deal about to lose $11,300."""
    assign(avery, make_plan(PlanType.LAND, LAND))
    soylent, fourth = make_account("soylent"), make_account("fourth-coffee")
    for account in (soylent, fourth):
        own(account, avery)
    # $36,000 × 10% × 50% = $1,800; $226,000 × 10% × 50% = $11,300.
    contract(soylent, "36000", signed=JAN, end=D(2027, 12, 31))
    contract(fourth, "226000", signed=JAN, end=D(2027, 12, 31))
    # Soylent $95.70/day: $2,871 → $34,930.50 → 97.03%. Fourth Coffee $198/day: $5,940 →
    # $72,270 → 31.98%. Both clear the day-90 floor and were paid in April.
    spend(soylent, meter, D(2026, 1, 1), D(2026, 6, 30), "95.70")
    spend(fourth, meter, D(2026, 1, 1), D(2026, 6, 30), "198")
    run_months(JAN, D(2026, 6, 1))
    clawbacks = [g for g in gate_outlook(person=avery, as_of=D(2026, 6, 30)) if g.label.startswith("Day-365")]
    assert [(g.account, g.status, g.amount, g.at_stake, g.burn_now, g.statement) for g in clawbacks] == [
        (fourth, CLAWBACK, Decimal("-11300.00"), Decimal("11300.00"), Decimal("0.3198"), D(2027, 1, 1)),
        (soylent, KEPT, 0, Decimal("1800.00"), Decimal("0.9703"), None),
    ]
    assert clawbacks[1].good and not clawbacks[0].good
    assert "$11,300.00" in clawbacks[0].says and "reversed" in clawbacks[0].says
    timeline = pay_timeline(person=avery, as_of=D(2026, 6, 30))
    assert {m.month: m.total for m in timeline.months if m.items} == {D(2027, 1, 1): Decimal("-11300.00")}


def test_a_deal_signed_after_the_day_has_no_gates_yet(land_deal, avery, meter):
    later = make_account("later")
    own(later, avery)
    contract(later, "100000", signed=D(2026, 3, 20))
    assert {g.account.external_id for g in gate_outlook(person=avery, as_of=D(2026, 3, 15))} == {"acme"}


# --- The page ---------------------------------------------------------------------------------


def test_the_pay_outlook_page_shows_the_timeline_and_gates_in_words(
    avery, acme, meter, client, django_assert_max_num_queries
):
    as_of = yesterday_utc()
    signed = as_of - dt.timedelta(days=75)  # day 90 is 15 days ahead
    assign(avery, make_plan(PlanType.LAND, LAND))
    own(acme, avery)
    contract(acme, "240000", signed=signed, end=signed + dt.timedelta(days=729))
    spend(acme, meter, as_of - dt.timedelta(days=29), as_of, "200")  # 30.42% today
    run_months(month_start(signed), add_months(month_start(as_of), -1))
    client.force_login(avery)
    with django_assert_max_num_queries(30):
        response = client.get(f"/comp/statements/{avery.pk}/estimator/")
    text = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert f"burn as of {as_of}" in text
    assert 'Day-90 share: <strong>$12,000.00</strong> <span class="muted small">(burn 30.4% now, needs 25.0%)' in text
    assert "pays if burn holds" in text
    assert "Day-365 clawback: <strong>−$12,000.00</strong>" in text
    assert "None" not in text
    # Someone else's outlook is not theirs to see.
    assert client.get(f"/comp/statements/{avery.pk + 1000}/estimator/").status_code == 404


# --- The usage days behind a line -----------------------------------------------------------------


def test_a_gate_line_links_to_the_usage_days_its_burn_came_from(land_deal, avery, acme, meter, client):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")
    run_months(JAN, D(2026, 4, 1))
    line = LedgerLine.objects.get(key=f"land:{land_deal.pk}:share1")
    client.force_login(avery)
    page = client.get(f"/comp/statements/lines/{line.pk}/").content.decode()
    url = "/usage/accounts/acme/days/?through=2026-04-01&amp;days=30"
    assert f'href="{url}"' in page
    assert "The 30 days of usage behind the checkpoint&#x27;s burn (2026-04-01)" in page
    days = client.get(url.replace("&amp;", "&"))
    text = " ".join(days.content.decode().split())
    assert days.status_code == 200
    # The same figures as the line's inputs: Mar 3 – Apr 1, 30 × $200.
    assert "usage 2026-03-03 to 2026-04-01" in text
    assert "<strong>$6,000.00</strong> revenue" in text
    assert "<strong>$73,000.00</strong> run rate" in text
    assert "<strong>30.4%</strong> burn" in text
    assert text.count("api-calls") == 30
    # The signature share has no burn behind it: no usage link.
    signature = LedgerLine.objects.get(key=f"land:{land_deal.pk}:share0")
    assert "/days/" not in client.get(f"/comp/statements/lines/{signature.pk}/").content.decode()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("days=0", "days: give a whole number of days from 1 to 92"),
        ("days=93", "days: give a whole number of days from 1 to 92"),
        ("days=²", "days: give a whole number of days from 1 to 92"),
        ("through=2026-02-30", "through: &#x27;2026-02-30&#x27; is not a date (YYYY-MM-DD)"),
        ("through=1900-01-01", "through: 1900-01-01 is outside the days revops covers"),
    ],
)
def test_usage_days_refuse_a_bad_window_with_the_reason(land_deal, avery, client, query, reason):
    client.force_login(avery)
    response = client.get(f"/usage/accounts/acme/days/?{query}")
    assert response.status_code == 400
    assert reason in response.content.decode()
