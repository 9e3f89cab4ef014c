"""Data → Warehouse pages: create (URL stored encrypted, password masked), test & preview with
problems by row and column, pull now, pull history. Finance and admin only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import Account, Segment
from integrations.crypto import decrypt_json
from integrations.models import RunState, WarehousePull, WarehouseSource
from integrations.warehouse.services import pull_execute
from revops.models import Role
from usage.models import Meter

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)


@pytest.fixture
def finance(make_user, with_totp):
    person = make_user(Role.FINANCE, email="fin@example.com")
    with_totp(person)
    client = Client()
    client.force_login(person)
    return client


def _form(dsn: str, **overrides) -> dict:
    data = {
        "name": "Analytics",
        "url": dsn,
        "mode": "aggregates",
        "query": "SELECT * FROM daily_usage ORDER BY usage_day",
        "table": "",
        "cursor_column": "updated_at",
        "cursor_kind": "timestamp",
        "lookback": "48",
        "schedule_minutes": "60",
        "map_account": "customer",
        "map_meter": "metric",
        "map_day": "usage_day",
        "map_quantity": "total",
        "map_event_count": "events",
    }
    data.update(overrides)
    return data


def with_password(dsn: str) -> str:
    """The warehouse URL with a password (the server trusts the local user, so any works)."""
    return dsn.replace("postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:s3cret-pw@")


def test_finance_adds_a_source_and_the_url_is_stored_encrypted_and_shown_masked(finance, warehouse):
    url = with_password(warehouse.dsn)
    response = finance.post("/data/connections/warehouse/", _form(url))

    source = WarehouseSource.objects.get()
    assert response.status_code == 302
    assert response.url == f"/data/connections/warehouse/{source.pk}/"
    assert decrypt_json(source.url_encrypted)["url"] == url
    assert "s3cret-pw" not in source.url_encrypted
    assert source.lookback == 48 * 3600
    page = finance.get(f"/data/connections/warehouse/{source.pk}/").content.decode()
    listing = finance.get("/data/connections/warehouse/").content.decode()
    for html in (page, listing):
        assert "s3cret-pw" not in html
        assert "postgres:***@" in html
        assert "None" not in html


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"url": "not a url"}, "url", "is not a SQLAlchemy URL"),
        ({"url": "mysql://u:p@h/db"}, "url", "&#x27;mysql&#x27; is not a supported warehouse"),
        (
            {"url": "bigquery://project/dataset"},
            "url",
            "the BigQuery driver is not installed (pip install sqlalchemy-bigquery)",
        ),
        (
            {"query": "SELECT 1; DROP TABLE x"},
            "query",
            "must be a single SELECT statement (it has a &#x27;;&#x27; inside)",
        ),
        (
            {"query": "DELETE FROM daily_usage"},
            "query",
            "must be a single SELECT statement (start with SELECT or WITH)",
        ),
        ({"map_quantity": ""}, "map_quantity", "map the quantity column"),
    ],
)
def test_a_bad_source_is_refused_naming_the_field(finance, warehouse, overrides, field, message):
    response = finance.post("/data/connections/warehouse/", _form(warehouse.dsn, **overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert f'name="{field}"' in response.content.decode()
    assert not WarehouseSource.objects.exists()


def test_preview_highlights_problems_by_row_and_column_and_pull_now_queues_a_pull(finance, warehouse):
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    Meter.objects.create(key="api-calls", name="API calls", unit="call")
    warehouse.rows(
        "daily_usage",
        [
            ("acme", "api-calls", dt.date(2026, 11, 18), Decimal("10"), 1, T0),
            ("initech", "api-calls", dt.date(2026, 11, 19), Decimal("5"), 1, T0),
        ],
    )
    finance.post("/data/connections/warehouse/", _form(warehouse.dsn))
    source = WarehouseSource.objects.get()

    html = finance.post(f"/data/connections/warehouse/{source.pk}/preview/").content.decode()

    assert "Preview: first 2 rows" in html
    assert "1 problem: a pull of these rows would apply nothing." in html
    assert 'class="mono small cell-error" title="unknown account &#x27;initech&#x27;"' in html
    assert not WarehousePull.objects.exists()

    response = finance.post(f"/data/connections/warehouse/{source.pk}/pull/")
    run = WarehousePull.objects.get()
    assert response.url == f"/data/connections/warehouse/pulls/{run.pk}/"
    pull_execute(run.pk)
    html = finance.get(f"/data/connections/warehouse/pulls/{run.pk}/").content.decode()
    assert "Failed" in html
    assert '<td class="num">2</td><td class="mono">customer</td><td>unknown account &#x27;initech&#x27;</td>' in html


def test_test_and_preview_names_a_mapped_column_the_query_lacks(finance, warehouse):
    finance.post("/data/connections/warehouse/", _form(warehouse.dsn, map_event_count="evts"))
    source = WarehouseSource.objects.get()

    response = finance.post(f"/data/connections/warehouse/{source.pk}/preview/", follow=True)

    assert "The query returns no column for event_count → evts" in response.content.decode()


def test_a_successful_pull_shows_counts_and_rows_per_second(finance, warehouse):
    Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    Meter.objects.create(key="api-calls", name="API calls", unit="call")
    warehouse.rows("daily_usage", [("acme", "api-calls", dt.date(2026, 11, 18), Decimal("10"), 1, T0)])
    finance.post("/data/connections/warehouse/", _form(warehouse.dsn))
    source = WarehouseSource.objects.get()
    finance.post(f"/data/connections/warehouse/{source.pk}/pull/")
    run = pull_execute(WarehousePull.objects.get().pk)
    assert run.state == RunState.SUCCEEDED

    html = finance.get(f"/data/connections/warehouse/{source.pk}/").content.decode()

    assert "created 1, replaced 0, unchanged 0" in html
    assert "None" not in html


@pytest.mark.parametrize("role", [Role.AE, Role.CSM, Role.LEADER, Role.PRODUCT])
def test_other_roles_are_refused(make_user, role):
    client = Client()
    client.force_login(make_user(role))
    assert client.get("/data/connections/warehouse/").status_code == 403
    assert client.post("/data/connections/warehouse/", {"name": "x"}).status_code == 403
    assert not WarehouseSource.objects.exists()
