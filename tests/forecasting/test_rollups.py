"""Forecast roll-ups (hierarchy, book, team, segment, company), the forecast page and the
account panel, and who may see which scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import Http404
from django.test import Client

from accounts.models import Account, OwnerRole, Ownership, Segment
from forecasting import rollups
from forecasting.models import AccountForecast, ForecastPoint
from revops.models import Role, Team
from tests.factories import UserFactory

AS_OF = dt.date(2026, 11, 20)
D = Decimal


def _forecast(account: Account, *, daily: str, half_width: str, as_of: dt.date = AS_OF) -> AccountForecast:
    """A snapshot with a flat daily forecast and an interval of ± half_width a day; each
    horizon's total interval is ± half_width × √days (as for independent days)."""
    value, half = D(daily), D(half_width)
    totals = {}
    for h in rollups.HORIZONS:
        spread = (half * D(h).sqrt()).quantize(D("0.01"))
        totals |= {f"next_{h}": value * h, f"next_{h}_lower": value * h - spread, f"next_{h}_upper": value * h + spread}
    forecast = AccountForecast.objects.create(
        account=account, as_of=as_of, method="ets", history_days=365, naive_daily=value, **totals
    )
    ForecastPoint.objects.bulk_create(
        ForecastPoint(
            forecast=forecast,
            day=as_of + dt.timedelta(days=k),
            days=1,
            value=value,
            lower=value - half,
            upper=value + half,
        )
        for k in range(1, 4)
    )
    return forecast


@pytest.fixture
def world(db, with_totp):
    """Team East (manager Mo; AEs Avery and Ari) and West (Bea). Avery owns Acme (with its
    division Acme EU) and Ari owns Globex; Bea owns Initech."""
    mo = UserFactory(role=Role.AE, name="Mo Manager")
    east = Team.objects.create(name="East", manager=mo)
    west = Team.objects.create(name="West")
    avery = UserFactory(role=Role.AE, name="Avery", team=east)
    ari = UserFactory(role=Role.AE, name="Ari", team=east)
    bea = UserFactory(role=Role.AE, name="Bea", team=west)
    leader = UserFactory(role=Role.LEADER, name="Lena")
    acme = Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    acme_eu = Account.objects.create(external_id="acme-eu", name="Acme EU", segment=Segment.ENTERPRISE, parent=acme)
    globex = Account.objects.create(external_id="globex", name="Globex", segment=Segment.SMB)
    initech = Account.objects.create(external_id="initech", name="Initech", segment=Segment.SMB)
    start = dt.date(2026, 1, 1)
    for person, account in ((avery, acme), (ari, globex), (bea, initech)):
        Ownership.objects.create(account=account, person=person, role=OwnerRole.LAND_AE, start_on=start)
    _forecast(acme, daily="100", half_width="30")
    _forecast(acme_eu, daily="50", half_width="40")
    _forecast(globex, daily="20", half_width="10")
    _forecast(initech, daily="10", half_width="5")
    return locals()


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
