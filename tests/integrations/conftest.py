from __future__ import annotations

import pytest

from integrations.fakes.salesforce import FakeSalesforce
from integrations.fakes.server import RunningFake
from integrations.models import Provider
from integrations.services import connection_create
from revops.models import Role
from tests.integrations.warehouse_support import warehouse, warehouse_dsn  # noqa: F401 (the warehouse tests' fixtures)


@pytest.fixture(autouse=True)
def _fast_backoff(settings):
    settings.CRM_RETRY_BASE_S = 0.01
    settings.CRM_RETRY_CAP_S = 0.05


@pytest.fixture
def fake_sf(tmp_path):
    """A fake Salesforce org over https on a free port (simple-salesforce speaks only https)."""
    api = FakeSalesforce()
    with RunningFake(api, tls_dir=tmp_path / "tls") as running:
        yield running


@pytest.fixture
def sf_connection(db, fake_sf, make_user):
    admin = make_user(Role.ADMIN, email="crm-admin@example.com")
    return connection_create(
        name="Fake org",
        provider=Provider.SALESFORCE,
        base_url=fake_sf.url,
        ca_file=fake_sf.ca_file,
        credentials={"access_token": "fake-session", "refresh_token": "fake-refresh"},
        created_by=admin,
    )


@pytest.fixture
def fake_hs():
    """A fake HubSpot portal over plain http (hubspot-api-client takes any host)."""
    from integrations.fakes.hubspot import FakeHubSpot

    with RunningFake(FakeHubSpot()) as running:
        yield running


@pytest.fixture
def hs_connection(db, fake_hs):
    return connection_create(
        name="Fake portal",
        provider=Provider.HUBSPOT,
        base_url=fake_hs.url,
        portal_id="4242",
        credentials={"access_token": "pat-fake"},
    )
