"""A meter's new tiers re-price its stored rollups (the meters reference import)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Segment
from revops.tabular import ImportRejected
from tests.import_helpers import csv_file
from usage.ingestion.events import EventIn
from usage.ingestion.ingest import ingest_batch
from usage.ingestion.reference_import import import_meters
from usage.ingestion.rollups import fold_all_deltas, rebuild_from_events
from usage.models import DailyRollup, Meter, MeterTier

pytestmark = pytest.mark.django_db

HEADER = "key,name,unit,unit_price"
RECEIVED = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def ev(event_id: str, day: int, quantity: str, *, meter="tokens", month=10, account="acme") -> EventIn:
    when = dt.datetime(2026, month, day, 12, tzinfo=dt.UTC)
    return EventIn("default", event_id, account, meter, when, Decimal(quantity), {})


def revenue(meter: str = "tokens") -> dict[tuple[str, dt.date], Decimal]:
    rows = DailyRollup.objects.filter(meter__key=meter).select_related("account")
    return {(r.account.external_id, r.day): r.revenue for r in rows}


@pytest.fixture
def stored(acme):
    Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    import_meters(csv_file(HEADER, "tokens,Tokens,token,0.002", "calls,Calls,call,0.5"))
    ingest_batch(
        [
            ev("a", 1, "600"),
            ev("b", 2, "600"),
            ev("c", 1, "500", month=11),
            ev("d", 3, "100", account="globex"),
            ev("e", 3, "10", meter="calls"),
        ],
        received_at=RECEIVED,
    )
    fold_all_deltas()


def test_new_tiers_reprice_every_stored_month_of_that_meter(stored):
    assert revenue() == {
        ("acme", dt.date(2026, 10, 1)): Decimal("1.2"),
        ("acme", dt.date(2026, 10, 2)): Decimal("1.2"),
        ("acme", dt.date(2026, 11, 1)): Decimal("1.0"),
        ("globex", dt.date(2026, 10, 3)): Decimal("0.2"),
    }

    report = import_meters(csv_file(HEADER, "tokens,Tokens,token,0-1000:0.002|1000-:0.001", "calls,Calls,call,0.5"))

    assert report.summary == {"created": 0, "updated": 1, "unchanged": 1}
    # Oct 2 crosses the 1,000 tier: 400 at 0.002 + 200 at 0.001. Each month starts again.
    assert revenue() == {
        ("acme", dt.date(2026, 10, 1)): Decimal("1.2"),
        ("acme", dt.date(2026, 10, 2)): Decimal("1.0"),
        ("acme", dt.date(2026, 11, 1)): Decimal("1.0"),
        ("globex", dt.date(2026, 10, 3)): Decimal("0.2"),
    }
    assert revenue("calls") == {("acme", dt.date(2026, 10, 3)): Decimal("5.0")}


def test_a_flat_price_change_reprices_too_and_matches_a_rebuild(stored):
    import_meters(csv_file(HEADER, "tokens,Tokens,token,0.003", "calls,Calls,call,0.5"))
    repriced = revenue()

    assert repriced[("acme", dt.date(2026, 10, 2))] == Decimal("1.8")
    rebuild_from_events()
    assert revenue() == repriced


def test_a_rejected_meters_file_reprices_nothing(stored):
    before = revenue()

    with pytest.raises(ImportRejected):  # the second row's price is negative
        import_meters(csv_file(HEADER, "tokens,Tokens,token,0.003", "calls,Calls,call,-1"))

    assert revenue() == before
    assert [t.unit_price for t in MeterTier.objects.filter(meter=Meter.objects.get(key="tokens"))] == [Decimal("0.002")]
