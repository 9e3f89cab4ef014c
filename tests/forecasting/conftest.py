from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, OwnerRole, Ownership, Segment
from revops.models import Role, Team
from tests.factories import UserFactory
from tests.forecasting.synthetic import flat_forecast
from usage.models import DailyRollup, Meter, MeterTier


@pytest.fixture
def meter(db):
    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="1")
    return meter


@pytest.fixture
def make_account(db):
    def make(external_id: str, **kwargs) -> Account:
        return Account.objects.create(
            external_id=external_id,
            name=external_id.title(),
            segment=kwargs.pop("segment", Segment.MID_MARKET),
            **kwargs,
        )

    return make


@pytest.fixture
def spend(meter):
    def add(account: Account, first: dt.date, values: list[Decimal]) -> None:
        """One rollup a day from ``first`` with each of ``values`` (zeros skipped, as in real rollups)."""
        DailyRollup.objects.bulk_create(
            DailyRollup(
                account=account, meter=meter, day=first + dt.timedelta(days=k), quantity=v, revenue=v, event_count=1
            )
            for k, v in enumerate(values)
            if v
        )

    return add


@pytest.fixture
def world(db, with_totp):
    """Team East (manager Mo; AEs Avery and Ari) and West (Bea). Avery owns Acme (with its
    division Acme EU) and Ari owns Globex; Bea owns Initech. Flat forecasts as of
    ``WORLD_AS_OF``: Acme 100 a day (± 30), Acme EU 50 (± 40), Globex 20 (± 10), Initech 10 (± 5)."""
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
    flat_forecast(acme, daily="100", half_width="30")
    flat_forecast(acme_eu, daily="50", half_width="40")
    flat_forecast(globex, daily="20", half_width="10")
    flat_forecast(initech, daily="10", half_width="5")
    return locals()
