from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Segment
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
