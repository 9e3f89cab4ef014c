"""GET /api/v1/forecasts/accounts/{id} and /api/v1/forecasts/accuracy: fields and scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import OwnerRole, Ownership
from forecasting.services import run_forecasts
from revops.api_keys import api_key_create
from revops.models import ApiKey, Role

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 4, 30)


@pytest.fixture
def book(ae, make_user, make_account, spend):
    other = make_user(Role.AE, email="other@example.test", name="Olive Other")
    mine = make_account("mine")
    theirs = make_account("theirs")
    Ownership.objects.create(account=mine, person=ae, role=OwnerRole.LAND_AE, start_on=dt.date(2025, 1, 1))
    Ownership.objects.create(account=theirs, person=other, role=OwnerRole.LAND_AE, start_on=dt.date(2025, 1, 1))
    # 30 days at 40: the run-rate method, 40.00 a day.
    spend(mine, AS_OF - dt.timedelta(days=29), [Decimal(40)] * 30)
    spend(theirs, AS_OF - dt.timedelta(days=29), [Decimal(90)] * 30)
    run_forecasts(as_of=AS_OF)
    spend(mine, AS_OF + dt.timedelta(days=1), [Decimal(50)] * 7)
    spend(theirs, AS_OF + dt.timedelta(days=1), [Decimal(90)] * 7)
    return {"ae": ae, "other": other}


def get(path: str, person, **params):
    _, raw = api_key_create(name="reader", scopes=[ApiKey.Scope.READ], created_by=person)
    return Client().get(path, params, headers={"Authorization": f"Bearer {raw}"})


def test_an_account_forecast_has_dated_points_with_money_as_strings(book):
    response = get("/api/v1/forecasts/accounts/mine", book["ae"], as_of="2026-04-30", horizon=3)

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("account", "as_of", "method", "history_days")} == {
        "account": "mine",
        "as_of": "2026-04-30",
        "method": "run_rate",
        "history_days": 30,
    }
    assert [(p["date"], p["days"], p["value"]) for p in body["points"]] == [
        ("2026-05-01", 1, "40.00"),
        ("2026-05-02", 1, "40.00"),
        ("2026-05-03", 1, "40.00"),
    ]
    assert all(Decimal(p["lower"]) < Decimal(p["value"]) < Decimal(p["upper"]) for p in body["points"])


def test_the_newest_snapshot_and_a_year_are_the_defaults(book):
    body = get("/api/v1/forecasts/accounts/mine", book["ae"]).json()

    assert body["as_of"] == "2026-04-30"
    assert len(body["points"]) == 130  # 90 days, then 40 weekly sums


def test_an_account_outside_the_callers_scope_is_a_404_like_an_unknown_one(book):
    assert get("/api/v1/forecasts/accounts/theirs", book["ae"]).status_code == 404
    assert get("/api/v1/forecasts/accounts/ghost", book["ae"]).status_code == 404
    assert get("/api/v1/forecasts/accounts/mine", book["ae"], as_of="2026-04-01").status_code == 404
    assert get("/api/v1/forecasts/accounts/mine", book["ae"], as_of="April").status_code == 400


def test_accuracy_counts_only_the_snapshots_the_caller_may_see(book):
    # mine, 7 days: forecast 280 vs actual 350 → WAPE 0.2, bias −0.2; naive (40 a day) the same.
    response = get("/api/v1/forecasts/accuracy", book["ae"], horizon=7)

    assert response.status_code == 200
    assert response.json() == {
        "horizon": 7,
        "model": {"wape": "0.2000", "bias": "-0.2000"},
        "naive": {"wape": "0.2000", "bias": "-0.2000"},
        "snapshots": 1,
    }


def test_accuracy_without_arrived_actuals_is_null(book):
    body = get("/api/v1/forecasts/accuracy", book["other"], horizon=30).json()

    assert body == {
        "horizon": 30,
        "model": {"wape": None, "bias": None},
        "naive": {"wape": None, "bias": None},
        "snapshots": 0,
    }


def test_anonymous_callers_are_refused(book):
    assert Client().get("/api/v1/forecasts/accuracy").status_code == 401
