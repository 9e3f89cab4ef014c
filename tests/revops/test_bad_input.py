"""Inputs that used to be server errors: each now gets a clear 4xx or a form error."""

from __future__ import annotations

import pytest
from django.test import Client

from revops.models import Role
from tests.revops.test_authorization_matrix import _world

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_out_of_range_numbers_dates_and_nesting_are_answers_not_server_errors():
    w = _world()
    leader, finance = Client(raise_request_exception=False), Client(raise_request_exception=False)
    leader.force_login(w["people"][Role.LEADER])
    finance.force_login(w["people"][Role.FINANCE])
    own = w["own_account"]
    deep = "[" * 100_000 + "]" * 100_000

    answers = {
        "offset 10**20": leader.get("/api/v1/alerts", {"offset": str(10**20)}),
        "limit 10**20": leader.get("/api/v1/alerts", {"limit": str(10**20)}),
        "period 0001-01": leader.get(f"/comp/statements/{w['ae']}/0001-01/"),
        "period 9999-12": leader.get(f"/comp/statements/{w['ae']}/9999-12/"),
        "csv 0001-01": leader.get(f"/comp/statements/{w['ae']}/0001-01.csv"),
        "api period 0001-01": leader.get("/api/v1/statements", {"user": "ae@example.com", "period": "0001-01"}),
        "chart as_of 0001-01-01": leader.get(f"/usage/accounts/{own}/usage-chart/", {"as_of": "0001-01-01"}),
        "chart as_of 9999-12-31": leader.get(f"/usage/accounts/{own}/usage-chart/", {"as_of": "9999-12-31"}),
        "metrics as_of 0001-01-01": leader.get(f"/usage/accounts/{own}/metrics/", {"as_of": "0001-01-01"}),
        "api as_of 0001-01-01": leader.get(f"/api/v1/accounts/{own}/metrics", {"as_of": "0001-01-01"}),
        "forecast as_of 0001-01-01": leader.get("/forecasts/", {"as_of": "0001-01-01"}),
        "adjustment 1e400": finance.post(
            f"/comp/statements/inquiries/{w['inquiry']}/answer/", {"body": "ok", "adjustment": "1e400"}
        ),
        "adjustment NaN": finance.post(
            f"/comp/statements/inquiries/{w['inquiry']}/answer/", {"body": "ok", "adjustment": "NaN"}
        ),
    }
    from revops.api_keys import api_key_create

    _, raw = api_key_create(name="k", scopes=["events:write"])
    answers["events nested 100k deep"] = Client(raise_request_exception=False).post(
        "/api/v1/events", deep, content_type="application/json", headers={"Authorization": f"Bearer {raw}"}
    )

    server_errors = {name: r.status_code for name, r in answers.items() if r.status_code >= 500}
    refused = {name: r.status_code for name, r in answers.items() if r.status_code in (400, 404)}
    assert server_errors == {}
    assert set(refused) >= {"offset 10**20", "limit 10**20", "period 0001-01", "period 9999-12", "csv 0001-01"}
    assert {"api period 0001-01", "api as_of 0001-01-01", "events nested 100k deep"} <= set(refused)
    from django.contrib.messages import get_messages

    said = [str(m) for m in get_messages(answers["adjustment 1e400"].wsgi_request)]
    assert any("less than $1,000,000,000" in message for message in said), said


def test_superscript_and_other_unicode_digits_in_ids_and_pages_are_not_server_errors():
    """'²' passes str.isdigit() but not int(): it used to be a 500 on these lists."""
    w = _world()
    leader = Client(raise_request_exception=False)
    leader.force_login(w["people"][Role.LEADER])

    answers = {
        "forecast team ²": leader.get("/forecasts/", {"scope": "team", "key": "²"}),
        "forecast book ²": leader.get("/forecasts/", {"scope": "book", "key": "٣"}),
        "opportunities page ²": leader.get("/opportunities/", {"page": "²"}),
        "alerts owner ²": leader.get("/alerts/", {"owner": "²"}),
        "book person ²": leader.get("/book/", {"person": "²"}),
    }

    assert {name: r.status_code for name, r in answers.items() if r.status_code >= 500} == {}
