"""The product managers' page: usage and adoption by meter and feature, month by month,
with the running month marked partial, and the latest releases with their verdicts."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from accounts.models import Account
from reviews.product import product_usage
from revops.models import Role

from .conftest import RELEASED_ON
from .test_analysis_pages import client_for, text

URL = "/reviews/analysis/product/"
APRIL_3 = dt.date(2026, 4, 3)


@pytest.fixture
def usage_world(hand_worked, daily, base_meter):
    """hand_worked's accounts (see conftest), plus the account "late" on 2026-03-31 and again
    on 2026-04-03, the newest day: April is partial, 3 of 30 days.

    February (22nd–28th): ten accounts spend $100 a day on API calls: $7,000, 10 accounts.
    March: a1–a5 $3,500 and n1–n5 $3,500 + 7 × (0 + 0 + 5 + 5 + 10) = $3,640 on API calls,
    and "late" $1: $7,141 from 11 accounts (+2.0% on February); Agent runs 7 × (10 + … + 50)
    = $1,050 from 5 accounts, 5 of the 11 active (45.5%). April: "late", $2 on API calls."""
    daily(Account.objects.get(external_id="late"), base_meter, APRIL_3, [2])
    return hand_worked


def test_usage_and_adoption_by_meter_and_feature_with_the_partial_month(usage_world):
    usage = product_usage(as_of=APRIL_3, months=3)

    assert [(m.start, m.days_covered, m.days, m.partial) for m in usage.months] == [
        (dt.date(2026, 2, 1), 28, 28, False),
        (dt.date(2026, 3, 1), 31, 31, False),
        (dt.date(2026, 4, 1), 3, 30, True),
    ]
    assert usage.partial == "partial: 3 of 30 days"
    assert usage.active == (10, 11, 1)
    api, agents = (next(line for line in usage.meters if line.key == key) for key in ("api-calls", "agent-runs"))
    assert api.revenue == (Decimal(7000), Decimal(7141), Decimal(2))
    assert api.accounts == (10, 11, 1)
    assert (api.latest_revenue, api.latest_accounts, api.accounts_change) == (Decimal(7141), 11, 1)
    assert api.revenue_change.quantize(Decimal("0.0001")) == Decimal("0.0201")
    assert agents.revenue == (Decimal(0), Decimal(1050), Decimal(0))
    assert (agents.latest_accounts, agents.accounts_change, agents.revenue_change) == (5, 5, None)
    assert agents.latest_adoption == Decimal(5) / 11
    assert [(f.key, f.label, f.detail) for f in usage.features] == [
        ("agents", "Agents", "Agent runs"),
        ("core", "Core", "API calls"),
    ]


def test_the_page_shows_charts_tables_and_release_verdicts(usage_world, product):
    response = client_for(product).get(f"{URL}?months=3")
    page = text(response)
    body = response.content.decode()

    assert response.status_code == 200
    assert "to 2026-04-03, the newest day with usage; Apr 2026 is partial: 3 of 30 days, drawn lighter" in page
    # Adoption by meter: last complete month (March) against February.
    assert "Agent runs per run · Agents $1,050 — 5 45.5% +5 0 · 5 · 0*" in page
    assert "API calls per call · Core $7,141 +2.0% 11 100.0% +1 10 · 11 · 1*" in page
    assert "Adoption by feature Feature" in page and "Agents Agent runs $1,050" in page
    # Four Plotly charts, the partial month lighter and noted.
    for name in (
        "product-meter-revenue",
        "product-meter-accounts",
        "product-feature-revenue",
        "product-feature-accounts",
    ):
        assert f'id="{name}"' in body
    figure = json.loads(body.split('id="product-meter-revenue" type="application/json">')[1].split("</script>")[0])
    assert figure["data"][0]["marker"]["opacity"] == [1, 1, 0.4]
    assert figure["layout"]["annotations"][0]["text"] == "partial: 3 of 30 days"
    assert "/static/vendor/plotly-" in body
    # The latest release with its verdict (28 days each side: these accounts start 7 days before it).
    assert f'href="/reviews/analysis/releases/{usage_world.pk}/"' in body
    assert "2026-03-01 Agents GA Agent runs Too few to judge: 0 matched adopters" in page


def test_a_bad_month_count_is_a_message(usage_world, leader):
    page = text(client_for(leader).get(f"{URL}?months=99"))
    assert "Show a whole number of months from 2 to 24." in page
    assert "Adoption by meter" not in page


def test_no_usage_yet_says_so(db, leader):
    page = text(client_for(leader).get(URL))
    assert "No usage recorded yet" in page


def test_product_managers_and_leaders_find_it_in_the_menu_and_sellers_do_not(db, make_user, with_totp):
    for role, listed in (
        (Role.PRODUCT, True),
        (Role.LEADER, True),
        (Role.ADMIN, True),
        (Role.AE, False),
        (Role.CSM, False),
    ):
        user = make_user(role)
        with_totp(user)
        items = {i["label"]: i["url"] for i in client_for(user).get("/").context["nav_items"]}
        assert ("Product" in items) is listed, role
        if listed:
            assert items["Product"] == URL


def test_the_page_reads_a_fixed_number_of_queries(
    usage_world, leader, make_account, daily, base_meter, django_assert_max_num_queries
):
    for k in range(20):
        daily(make_account(f"extra-{k}"), base_meter, RELEASED_ON - dt.timedelta(days=7), [50] * 14)
    client = client_for(leader)
    # Session and user (2), latest day, meters, 3 grouped usage queries, releases, 3 per release.
    with django_assert_max_num_queries(11):
        assert client.get(URL).status_code == 200
