"""Forecast roll-ups (hierarchy, book, team, segment, company), the forecast page and the
account panel, and who may see which scope."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.http import Http404
from django.test import Client

from forecasting import rollups
from revops.api_keys import api_key_create
from revops.models import ApiKey, Role
from tests.factories import UserFactory
from tests.forecasting.synthetic import WORLD_AS_OF

AS_OF = WORLD_AS_OF
D = Decimal


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_parent_rolls_up_its_divisions_and_intervals_combine_in_quadrature(world):
    scope = rollups.scope_for(world["leader"], "account", "acme", on=AS_OF)
    assert scope.label == "Acme and its 1 division"
    totals = rollups.rolled_totals(scope.accounts, as_of=AS_OF)
    assert totals.accounts == 2
    assert totals.totals[90].value == D(150 * 90)
    # ±30√90 and ±40√90 combine to ±50√90, not ±70√90.
    assert totals.totals[90].upper - totals.totals[90].value == pytest.approx(D(50) * D(90).sqrt(), abs=D("0.02"))
    points = rollups.rolled_points(scope.accounts, as_of=AS_OF)
    assert [(p.value, p.lower, p.upper) for p in points] == [(D("150.00"), D("100.00"), D("200.00"))] * 3
    assert totals.run_rate_total(365) == D(150 * 365)


def test_the_company_counts_each_account_once_and_segments_add_up(world):
    scope = rollups.scope_for(world["leader"], "company", "", on=AS_OF)
    totals = rollups.rolled_totals(scope.accounts, as_of=AS_OF)
    assert totals.accounts == 4 and totals.totals[365].value == D(180 * 365)
    segments = rollups.breakdown_by_segment(scope.accounts, as_of=AS_OF)
    assert {r.key: r.totals.totals[90].value for r in segments} == {"enterprise": D(150 * 90), "smb": D(30 * 90)}
    assert sum(r.totals.accounts for r in segments) == totals.accounts


def test_teams_and_books_sum_what_their_people_own_with_divisions(world):
    company = rollups.scope_for(world["leader"], "company", "", on=AS_OF)
    teams = {
        r.label: r.totals.totals[90].value
        for r in rollups.breakdown_by_team(world["leader"], company.accounts, as_of=AS_OF, on=AS_OF)
    }
    assert teams == {"East": D(170 * 90), "West": D(10 * 90)}
    east = rollups.scope_for(world["mo"], "team", str(world["east"].pk), on=AS_OF)
    books = rollups.breakdown_by_person([world["avery"], world["ari"]], east.accounts, as_of=AS_OF, on=AS_OF)
    assert [(r.label, r.totals.accounts, r.totals.totals[90].value) for r in books] == [
        ("Avery", 2, D(150 * 90)),
        ("Ari", 1, D(20 * 90)),
    ]


def test_an_ae_sees_only_their_own_book(world):
    avery = world["avery"]
    book = rollups.scope_for(avery, "book", str(avery.pk), on=AS_OF)
    assert set(book.accounts.values_list("external_id", flat=True)) == {"acme", "acme-eu"}
    for kind, key in (
        ("book", str(world["bea"].pk)),
        ("company", ""),
        ("segment", "smb"),
        ("team", str(world["west"].pk)),
        ("team", str(world["east"].pk)),  # a member, not the manager
        ("account", "initech"),
    ):
        with pytest.raises(Http404):
            rollups.scope_for(avery, kind, key, on=AS_OF)
    # The manager sees the team and its people's books, not another team's.
    assert rollups.scope_for(world["mo"], "book", str(world["ari"].pk), on=AS_OF).label == "Ari's book"
    with pytest.raises(Http404):
        rollups.scope_for(world["mo"], "book", str(world["bea"].pk), on=AS_OF)


def test_the_forecast_page_and_its_permissions(world, django_assert_max_num_queries):
    leader = _client(world["leader"])
    leader.get("/forecasts/")  # the fan and the breakdowns are cached after the first view
    with django_assert_max_num_queries(19):
        page = leader.get("/forecasts/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Forecast · Company" in body and "$16,200" in body  # next 90 days: 180 × 90
    assert 'data-chart="forecast-fan"' in body and "By segment" in body and "Initech" in body

    avery = _client(world["avery"])
    body = avery.get("/forecasts/").content.decode()
    assert "Your book" in body and "Acme EU" in body and "Initech" not in body and "Globex" not in body
    assert avery.get(f"/forecasts/?scope=book&key={world['bea'].pk}").status_code == 404
    assert avery.get("/forecasts/?scope=company").status_code == 404
    assert avery.get("/forecasts/?scope=nonsense").status_code == 404
    assert avery.get("/forecasts/?as_of=2026-13-01").status_code == 404
    assert avery.get("/forecasts/accuracy/?scope=company").status_code == 404
    assert avery.get("/forecasts/accounts/initech/").status_code == 404
    panel = avery.get("/forecasts/accounts/acme/", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "Acme and its 1 division" in panel.content.decode()


def test_the_accuracy_partial_scores_the_scope(world):
    response = _client(world["leader"]).get("/forecasts/accuracy/?scope=segment&key=smb")
    assert response.status_code == 200
    assert "Model WAPE" in response.content.decode()


# --- An account's figures include its divisions everywhere, unless asked for its own -------


def _account_row(body: str, external_id: str) -> str:
    """The text of one row of the forecast page's accounts table."""
    row = re.search(rf'<tr data-account="{external_id}">(.*?)</tr>', body, re.S)
    assert row, f"no row for {external_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(1)))


def _api(user, path: str, **params) -> dict:
    _, raw = api_key_create(name="reader", scopes=[ApiKey.Scope.READ], created_by=user)
    response = Client().get(path, params, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.content
    return response.json()


def test_a_parents_forecast_includes_its_divisions_on_the_panel_the_page_and_the_api(world):
    # Acme forecasts 100 a day and its division Acme EU 50: with divisions, 150 × 90 = 13,500
    # over the next 90 days; Acme's own usage only, 100 × 90 = 9,000.
    leader = _client(world["leader"])

    panel = leader.get("/forecasts/accounts/acme/", headers={"HX-Request": "true"}).content.decode()
    assert "$13,500" in panel and "incl. divisions" in panel
    row = _account_row(leader.get("/forecasts/").content.decode(), "acme")
    assert "$13,500" in row and "incl. 1 division" in row
    body = _api(world["leader"], "/api/v1/forecasts/accounts/acme", horizon=1)
    assert (body["divisions"], body["accounts"]) == ("include", 2)
    # Their ±30√90 and ±40√90 combine to ±50√90 = ±474.34.
    assert body["totals"][0] == {"horizon": 90, "value": "13500.00", "lower": "13025.66", "upper": "13974.34"}
    assert [p["value"] for p in body["points"]] == ["150.00"]  # 100 + 50 on the first day

    own_panel = leader.get("/forecasts/accounts/acme/?divisions=exclude", headers={"HX-Request": "true"})
    assert "$9,000" in own_panel.content.decode() and "own usage only" in own_panel.content.decode()
    own_row = _account_row(leader.get("/forecasts/?divisions=exclude").content.decode(), "acme")
    assert "$9,000" in own_row and "division" not in own_row
    own = _api(world["leader"], "/api/v1/forecasts/accounts/acme", horizon=1, divisions="exclude")
    assert (own["divisions"], own["accounts"], own["totals"][0]["value"]) == ("exclude", 1, "9000.00")
    # The stored interval of the account's own 90-day total, unchanged: ±30√90 = ±284.60.
    assert (own["totals"][0]["lower"], own["totals"][0]["upper"]) == ("8715.40", "9284.60")


def test_scope_totals_still_count_a_parent_and_its_division_once(world):
    # The company: 100 + 50 + 20 + 10 = 180 a day, 16,200 over 90 days, although Acme's row
    # (13,500 with its division) and Acme EU's (4,500) add up to more than their 13,500.
    body = _client(world["leader"]).get("/forecasts/").content.decode()

    assert "$16,200" in body and "each account once" in body
    assert "$4,500" in _account_row(body, "acme-eu")
    assert "Each row of the accounts table shows the account incl. divisions" in re.sub(r"\s+", " ", body)


def test_the_divisions_option_is_checked(world):
    leader = _client(world["leader"])
    assert leader.get("/forecasts/?divisions=sometimes").status_code == 404
    _, raw = api_key_create(name="reader", scopes=[ApiKey.Scope.READ], created_by=world["leader"])
    response = Client().get(
        "/api/v1/forecasts/accounts/acme", {"divisions": "both"}, headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 400


def test_an_account_without_divisions_says_its_figures_are_its_own(world):
    panel = _client(world["leader"]).get("/forecasts/accounts/globex/", headers={"HX-Request": "true"})
    body = panel.content.decode()
    assert "own usage (no divisions)" in body and "$1,800" in body  # 20 × 90
    assert "divisions=exclude" not in body  # nothing to toggle


# --- Product managers read every account: the forecast opens on the company ------------------


def test_a_product_manager_opens_the_company_forecast_and_its_segments(world):
    pm = _client(UserFactory(role=Role.PRODUCT, name="Pat"))

    body = pm.get("/forecasts/").content.decode()
    assert "Forecast · Company" in body and "$16,200" in body and "By segment" in body
    assert "Your book" not in body and "By team" not in body  # teams' books stay with their managers
    assert pm.get("/forecasts/?scope=segment&key=smb").status_code == 200
    assert pm.get(f"/forecasts/?scope=team&key={world['east'].pk}").status_code == 404


def test_the_forecast_page_shows_labels_not_field_keys(world):
    body = _client(world["leader"]).get("/forecasts/").content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))

    assert '(4 <abbr title="Exponential smoothing (damped trend, weekly seasonality)">smoothing</abbr>)' in body
    assert " ets " not in text and "run_rate" not in text
    assert '<span class="tag" title="Exponential smoothing (damped trend, weekly seasonality)">Smoothing</span>' in body
    assert "SMB" in _account_row(body, "globex")


def test_the_accounts_table_is_kept_until_the_hierarchy_changes(world, django_assert_max_num_queries):
    from django.core.cache import cache

    from accounts.models import Account

    cache.clear()
    leader = _client(world["leader"])
    assert "$13,500" in _account_row(leader.get("/forecasts/").content.decode(), "acme")
    with django_assert_max_num_queries(16):  # kept: no subtree sums again
        assert "$13,500" in _account_row(leader.get("/forecasts/").content.decode(), "acme")
    # The division leaves Acme: Acme's row is its own 9,000 at once, not a day later.
    division = Account.objects.get(parent__external_id="acme")
    division.parent = None
    division.save()
    row = _account_row(leader.get("/forecasts/").content.decode(), "acme")
    assert "$9,000" in row and "division" not in row
