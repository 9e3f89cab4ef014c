"""DailyRollup: exact sums per account × meter × day, tiered pricing, idempotent folds."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, Segment
from usage.ingestion.events import EventIn
from usage.ingestion.ingest import ingest_batch
from usage.ingestion.rollups import FOLD_LOCK, fold_all_deltas, fold_deltas, rebuild_from_events
from usage.models import DailyRollup, FirstSeen, Meter, MeterTier

pytestmark = pytest.mark.django_db

RECEIVED = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def at(day: int, hour: int = 12, month: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def ev(event_id: str, when: dt.datetime, quantity: str, *, account="acme", meter="tokens", **properties) -> EventIn:
    return EventIn("default", event_id, account, meter, when, Decimal(quantity), properties)


@pytest.fixture
def tokens(db):
    """1,000 tokens a month at 0.002, then 0.001 (tiers over each account's monthly volume)."""
    meter = Meter.objects.create(key="tokens", name="Tokens", unit="token")
    MeterTier.objects.create(meter=meter, up_to=Decimal(1000), unit_price=Decimal("0.002"))
    MeterTier.objects.create(meter=meter, up_to=None, unit_price=Decimal("0.001"))
    return meter


def rollups(account: str = "acme") -> dict[dt.date, tuple[Decimal, Decimal, int]]:
    rows = DailyRollup.objects.filter(account__external_id=account).order_by("day")
    return {r.day: (r.quantity, r.revenue, r.event_count) for r in rows}


def test_fold_sums_each_day_and_prices_tiers_over_the_month(acme, tokens):
    ingest_batch(
        [ev("a", at(1), "600"), ev("b", at(2), "600"), ev("c", at(3), "100"), ev("d", at(1, month=11), "500")],
        received_at=RECEIVED,
    )

    fold_all_deltas()

    # Oct 1: 0→600 at 0.002 = 1.2; Oct 2: 600→1000 at 0.002 + 1000→1200 at 0.001 = 0.8 + 0.2;
    # Oct 3: 1200→1300 at 0.001 = 0.1; Nov 1 starts a new month: 500 at 0.002 = 1.0.
    assert rollups() == {
        dt.date(2026, 10, 1): (Decimal(600), Decimal("1.2"), 1),
        dt.date(2026, 10, 2): (Decimal(600), Decimal("1.0"), 1),
        dt.date(2026, 10, 3): (Decimal(100), Decimal("0.1"), 1),
        dt.date(2026, 11, 1): (Decimal(500), Decimal("1.0"), 1),
    }


def test_a_late_event_reopens_its_day_and_reprices_the_rest_of_the_month(acme, tokens):
    ingest_batch([ev("a", at(1), "600"), ev("b", at(2), "600"), ev("c", at(3), "100")], received_at=RECEIVED)
    fold_all_deltas()

    ingest_batch([ev("late", at(1, hour=23), "500")], received_at=RECEIVED)
    fold_all_deltas()

    # Oct 1: 0→1100 = 1000×0.002 + 100×0.001 = 2.1; Oct 2: 1100→1700 = 0.6; Oct 3: 0.1.
    # The month totals 2.8 = price(1,800 tokens), whatever the order of arrival.
    assert rollups() == {
        dt.date(2026, 10, 1): (Decimal(1100), Decimal("2.1"), 2),
        dt.date(2026, 10, 2): (Decimal(600), Decimal("0.6"), 1),
        dt.date(2026, 10, 3): (Decimal(100), Decimal("0.1"), 1),
    }


def test_days_are_utc_days(acme, tokens):
    ingest_batch(
        [ev("a", dt.datetime(2026, 10, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "1")],
        received_at=RECEIVED,
    )
    fold_all_deltas()

    assert list(rollups()) == [dt.date(2026, 10, 2)]


def test_folding_twice_changes_nothing(acme, tokens):
    ingest_batch([ev("a", at(1), "10")], received_at=RECEIVED)
    fold_all_deltas()
    before = rollups()

    result = fold_deltas()

    assert result.folded_deltas == 0
    assert rollups() == before


def test_a_second_fold_while_one_runs_steps_aside(acme, tokens):
    ingest_batch([ev("a", at(1), "10")], received_at=RECEIVED)
    held, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
            held.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait(10)
    try:
        assert fold_deltas().skipped_locked is True
    finally:
        release.set()
        holder.join()
    assert fold_deltas().folded_deltas == 1


def test_first_seen_records_the_earliest_day_of_each_meter_workload_and_region(acme, tokens):
    ingest_batch([ev("a", at(5), "1", workload="chat", region="eu")], received_at=RECEIVED)
    ingest_batch([ev("b", at(2), "1", workload="chat"), ev("c", at(9), "1", region="us")], received_at=RECEIVED)

    seen = {(f.kind, f.value): f.first_day for f in FirstSeen.objects.filter(account=acme)}

    assert seen == {
        ("meter", "tokens"): dt.date(2026, 10, 2),
        ("workload", "chat"): dt.date(2026, 10, 2),
        ("region", "eu"): dt.date(2026, 10, 5),
        ("region", "us"): dt.date(2026, 10, 9),
    }


def test_rebuild_from_raw_events_gives_identical_rows(acme, tokens):
    Account.objects.create(external_id="beta", name="Beta", segment=Segment.SMB)
    ingest_batch(
        [
            ev("a", at(1), "600"),
            ev("b", at(2), "700", account="beta"),
            ev("c", at(2), "0.5"),
            ev("d", at(30, month=11), "2000"),
        ],
        received_at=RECEIVED,
    )
    ingest_batch([ev("late", at(1), "900")], received_at=RECEIVED)
    fold_all_deltas()
    incremental = sorted(
        DailyRollup.objects.values_list("account_id", "meter_id", "day", "quantity", "revenue", "event_count")
    )

    rebuild_from_events()

    rebuilt = sorted(
        DailyRollup.objects.values_list("account_id", "meter_id", "day", "quantity", "revenue", "event_count")
    )
    assert rebuilt == incremental


# --- Property: arrival order, retries and lateness never change the rollups -----------------

_event_ids = st.integers(min_value=0, max_value=14)
_quantities = st.decimals(min_value=0, max_value=2000, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def deliveries(draw):
    """A set of distinct events, then a delivery: duplicated, shuffled and cut into batches."""
    ids = draw(st.lists(_event_ids, min_size=1, max_size=10, unique=True))
    events = [
        ev(
            f"e{i}",
            at(draw(st.integers(1, 28)), draw(st.integers(0, 23)), month=draw(st.sampled_from([9, 10]))),
            str(draw(_quantities)),
            account=draw(st.sampled_from(["acme", "beta"])),
        )
        for i in ids
    ]
    # Retries carry the same id; a retry may even carry another time and quantity.
    retries = [
        EventIn(e.source, e.event_id, e.account_ref, e.meter_ref, at(15), Decimal("999"), {})
        for e in draw(st.lists(st.sampled_from(events), max_size=6))
    ]
    delivered = draw(st.permutations(events + retries))
    # The first copy of an id to arrive is the one that counts.
    first = {}
    for e in delivered:
        first.setdefault(e.event_id, e)
    cuts = sorted(draw(st.lists(st.integers(0, len(delivered)), max_size=3)))
    batches = [delivered[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivered)], strict=True)]
    fold_after = draw(st.lists(st.booleans(), min_size=len(batches), max_size=len(batches)))
    return list(first.values()), batches, fold_after


def _reset_usage():
    with connection.cursor() as cursor:
        # Deferred foreign-key checks pending in the test's transaction would block TRUNCATE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE usage_event, usage_eventkey, usage_rollupdelta, usage_dailyrollup, usage_firstseen")


def _snapshot():
    return sorted(DailyRollup.objects.values_list("account__external_id", "day", "quantity", "revenue", "event_count"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_any_interleaving_of_duplicates_and_late_events_gives_the_rollups_of_the_deduplicated_set(acme, tokens, case):
    winners, batches, fold_after = case
    Account.objects.get_or_create(external_id="beta", defaults={"name": "Beta", "segment": Segment.SMB})

    _reset_usage()
    ingest_batch(winners, received_at=RECEIVED)
    fold_all_deltas()
    expected = _snapshot()

    _reset_usage()
    for batch, fold_now in zip(batches, fold_after, strict=True):
        ingest_batch(batch, received_at=RECEIVED)
        if fold_now:
            fold_all_deltas()
    fold_all_deltas()

    assert _snapshot() == expected


def test_a_flat_priced_meter_is_priced_per_day_at_fold_time(acme):
    calls = Meter.objects.create(key="calls", name="Calls", unit="call")
    MeterTier.objects.create(meter=calls, up_to=None, unit_price=Decimal("0.0015"))
    ingest_batch([ev("a", at(1), "1000", meter="calls")], received_at=RECEIVED)
    fold_all_deltas()

    ingest_batch([ev("b", at(1, hour=20), "333.5", meter="calls")], received_at=RECEIVED)
    result = fold_deltas()

    # 1,333.5 calls × 0.0015 = 2.00025, computed in the upsert: nothing left to re-price.
    assert rollups() == {dt.date(2026, 10, 1): (Decimal("1333.5"), Decimal("2.00025"), 2)}
    assert result.repriced_rows == 0
