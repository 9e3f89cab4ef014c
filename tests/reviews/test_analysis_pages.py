"""The analysis pages: product usage, release attribution and pilot reports."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import Client

from .conftest import END, RELEASED_ON, make_pilot

PRODUCT_PAGE = "/reviews/analysis/product/"
RELEASE_PAGES = (PRODUCT_PAGE, "/reviews/analysis/releases/", "/reviews/analysis/releases/{release}/")
PILOT_PAGES = ("/reviews/analysis/pilots/", "/reviews/analysis/pilots/{plan}/")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


@pytest.fixture
def urls(hand_worked):
    plan = make_pilot(["a1", "a2"])
    return [url.format(release=hand_worked.pk, plan=plan.pk) for url in RELEASE_PAGES + PILOT_PAGES]


def test_aes_and_csms_are_refused_every_analysis_page(urls, ae, csm):
    for user in (ae, csm):
        for url in urls:
            assert client_for(user).get(url).status_code == 403, url


def test_leaders_product_managers_and_finance_see_them(urls, leader, product, finance):
    for user in (leader, product, finance):
        for url in urls:
            assert client_for(user).get(url).status_code == 200, url


def test_release_list_links_each_release(hand_worked, product, release_meter):
    hand_worked.meters.add(release_meter)
    hand_worked.features = ["agents", "batch-api"]
    hand_worked.save()
    response = client_for(product).get("/reviews/analysis/releases/")
    assert f'href="/reviews/analysis/releases/{hand_worked.pk}/"' in response.content.decode()
    # Meter names and feature labels, not keys.
    assert "2026-03-01 Agents GA Agent runs Agents Batch API" in text(response)
    assert "agent-runs" not in text(response)


def test_release_page_gives_the_verdict_the_matched_groups_chart_and_method(hand_worked, leader):
    response = client_for(leader).get(f"/reviews/analysis/releases/{hand_worked.pk}/?window=7")
    page = text(response)

    assert response.status_code == 200
    assert "Verdict +26.0% (90% CI +10.9% to +41.1%)." in page
    assert (
        "Adopters' revenue changed +30.0% against +4.0% for their matched comparison accounts: "
        "an effect of +26.0 pts of their revenue before the release." in page
    )
    assert "5 adopters, 5 matched with 5 comparison accounts (of 5 non-adopters with revenue before)." in page
    assert "Matched adopters 5 $100.00 $130.00 +30.0%" in page
    assert "Matched comparison 5 $100.00 $104.00 +4.0%" in page
    assert "Effect (adopters − comparison) +26.0 pts" in page
    assert "standard error 7.07 pts, t = 2.1318 at 4 degrees of freedom." in page
    assert "Adopters against matched comparison accounts, each account's relative change" in page
    assert "Meters: Agent runs · All segments · before 2026-02-22 → 2026-02-28 · after 2026-03-01 → 2026-03-07" in page
    # Accounts by segment label, with each adopter's matches and effect.
    assert "A1 a1 Mid-market 2026-03-01 $100.00 $110.00 +10.0% 5 +4.0% +6.0 pts" in page
    assert "N3 n3 Mid-market $100.00 $105.00 +5.0%" in page
    assert "mid-market" not in page and "agent-runs" not in page
    body = response.content.decode()
    assert '"type": "scatter"' in body and "share of the level before the release" in body


def test_release_page_says_when_there_are_too_few_to_judge(hand_worked, leader, make_account, daily, base_meter):
    response = client_for(leader).get(f"/reviews/analysis/releases/{hand_worked.pk}/?window=7&segment=smb")
    page = text(response)
    assert "Too few to judge: 0 matched adopters and 0 comparison accounts (at least 5 of each needed)." in page
    assert "Too few matched adopters to judge (0; at least 5 needed)." in page
    assert "Meters: Agent runs · SMB ·" in page


@pytest.mark.parametrize("window", ["abc", "3", "365", "7.5"])
def test_a_bad_window_is_a_clear_message_not_an_error(hand_worked, leader, window):
    response = client_for(leader).get(f"/reviews/analysis/releases/{hand_worked.pk}/?window={window}&segment=x")
    page = text(response)

    assert response.status_code == 200
    assert "The window must be a whole number of days from 7 to 90." in page
    assert "Select a valid choice." in page
    assert "Verdict" not in page


def test_unknown_release_or_plan_is_404(db, leader):
    assert client_for(leader).get("/reviews/analysis/releases/999999/").status_code == 404
    assert client_for(leader).get("/reviews/analysis/pilots/999999/").status_code == 404


def test_pilot_pages_list_and_report(pilot_world, leader):
    plan = make_pilot(["p1", "p2", "p3"])
    listing = text(client_for(leader).get("/reviews/analysis/pilots/"))
    assert "Mid-market pilot v1 from 2026-04-01 2026-04-01 → 2026-05-30 3 6.0%" in listing

    page = text(client_for(leader).get(f"/reviews/analysis/pilots/{plan.pk}/"))
    assert f"Measured 2026-04-01 → {END.isoformat()} (60 days)" in page
    assert "Accounts 3 3" in page
    assert "Net-new consumption (total) $6,420 $630" in page
    assert "Median net-new per account $2,520 $0 $2,520" in page
    assert "Median expansion velocity (a month) +10.0% 0.0% +10.0 pts" in page
    assert "Median activities per account 1 0 1" in page
    assert "Pilot accounts (3)" in page and "Comparison accounts (3)" in page
    assert "P1 p1 Mid-market $9,000 $6,000 $8,640 $2,640 +20.0% 3" in page
    assert "half the smallest and twice the largest" in page


def test_page_query_counts_do_not_grow_with_accounts(
    hand_worked, pilot_world, leader, make_account, daily, base_meter, django_assert_max_num_queries
):
    for k in range(20):
        daily(make_account(f"extra-{k}"), base_meter, RELEASED_ON - dt.timedelta(days=7), [50] * 14)
    plan = make_pilot(["p1", "p2", "p3"])
    client = client_for(leader)
    # Session and user (2) + the page's own queries.
    with django_assert_max_num_queries(4):  # releases and their meters
        client.get("/reviews/analysis/releases/")
    with django_assert_max_num_queries(7):  # release, meters, windows, series; meters again for the cache key
        client.get(f"/reviews/analysis/releases/{hand_worked.pk}/?window=7")
    with django_assert_max_num_queries(4):  # plans and their versions
        client.get("/reviews/analysis/pilots/")
    with django_assert_max_num_queries(6):  # plan, latest version, latest day, accounts
        client.get(f"/reviews/analysis/pilots/{plan.pk}/")
