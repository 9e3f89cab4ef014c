"""Fixtures for the review analysis tests: meters, a release, accounts and daily revenue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Activity, ActivityKind, OwnerRole, Ownership, Segment
from comp.models import Plan, PlanType, PlanVersion
from revops.models import Role
from tests.factories import UserFactory
from usage.models import DailyRollup, Meter, MeterTier, ProductRelease
from usage.signals.services import refresh_metrics

RELEASED_ON = dt.date(2026, 3, 1)
# A 60-day pilot window, with usage history from 90 days before it.
START, END = dt.date(2026, 4, 1), dt.date(2026, 5, 30)
HISTORY = dt.date(2026, 1, 1)


@pytest.fixture
def base_meter(db) -> Meter:
    return Meter.objects.create(key="api-calls", name="API calls", unit="call", feature="core")


@pytest.fixture
def release_meter(db) -> Meter:
    return Meter.objects.create(key="agent-runs", name="Agent runs", unit="run", feature="agents")


@pytest.fixture
def release(release_meter) -> ProductRelease:
    """Found through its feature: the release names "agents", not the meter itself."""
    return ProductRelease.objects.create(released_on=RELEASED_ON, name="Agents GA", features=["agents"])


@pytest.fixture
def make_account(db):
    def make(external_id: str, segment: str = Segment.MID_MARKET, **kwargs) -> Account:
        return Account.objects.create(external_id=external_id, name=external_id.title(), segment=segment, **kwargs)

    return make


@pytest.fixture
def daily(db):
    """``daily(account, meter, first_day, values)``: one rollup a day from ``first_day``
    with each of ``values`` (zeros skipped, as real rollups do); returns the rows to
    create in bulk when ``save=False``."""

    def add(account: Account, meter: Meter, first: dt.date, values, *, save: bool = True):
        rows = [
            DailyRollup(
                account=account,
                meter=meter,
                day=first + dt.timedelta(days=k),
                quantity=1,
                revenue=Decimal(v),
                event_count=1,
            )
            for k, v in enumerate(values)
            if Decimal(v)
        ]
        if save:
            DailyRollup.objects.bulk_create(rows)
        return rows

    return add


@pytest.fixture
def leader(make_user):
    return make_user(Role.LEADER)


@pytest.fixture
def product(make_user):
    return make_user(Role.PRODUCT)


@pytest.fixture
def csm(make_user):
    return make_user(Role.CSM)


@pytest.fixture
def finance(make_user, with_totp):
    user = make_user(Role.FINANCE)
    with_totp(user)
    return user


@pytest.fixture
def hand_worked(make_account, daily, base_meter, release_meter, release):
    """Window 7 days. Everyone spends $100 a day on the base meter for the 14 days.
    Adopters A1–A5 add 10, 20, 30, 40, 50 a day on the release meter from the release day:
    relative changes +10% … +50%. Non-adopters N1–N5 raise their base meter by 0, 0, 5, 5,
    10 after the release. All are mid-market and the same size, so every adopter is matched
    to all five, whose change together is 520 ÷ 500 − 1 = +4%. Effects +6 … +46 points,
    equal weights: the estimate is +26 points."""
    for k, extra in enumerate((10, 20, 30, 40, 50), start=1):
        account = make_account(f"a{k}")
        daily(account, base_meter, RELEASED_ON - dt.timedelta(days=7), [100] * 14)
        daily(account, release_meter, RELEASED_ON, [extra] * 7)
    for k, rise in enumerate((0, 0, 5, 5, 10), start=1):
        account = make_account(f"n{k}")
        daily(account, base_meter, RELEASED_ON - dt.timedelta(days=7), [100] * 7 + [100 + rise] * 7)
    # A later day of data, so the 7-day post window is complete.
    daily(make_account("late"), base_meter, RELEASED_ON + dt.timedelta(days=30), [1])
    return release


def make_pilot(accounts: list[str], *, start=START, end=END, name="Mid-market pilot") -> Plan:
    plan = Plan.objects.create(name=name, type=PlanType.PILOT)
    PlanVersion.objects.create(
        plan=plan,
        version=1,
        effective_from=start,
        parameters={
            "rate": "0.06",
            "accounts": accounts,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "comparison": "segment",
        },
    )
    return plan


@pytest.fixture
def pilot_world(make_account, daily, base_meter, make_user):
    """Each account spends a constant $before a day from 2026-01-01 to 2026-03-31 and a
    constant $after a day through the 60-day window (2026-04-01 → 2026-05-30). So its
    90-day size is 90 × before, net-new 60 × (after − before), and its velocity
    (after/before)^(30/60) − 1 = √(after/before) − 1.

    Pilot (mid-market): P1 100 → 144 (size 9,000, net-new 2,640, velocity 20%),
    P2 200 → 242 (18,000, 2,520, 10%), P3 100 → 121 (9,000, 1,260, 10%).
    Size band: ×0.5 of 9,000 to ×2 of 18,000 = 4,500 … 36,000.
    Comparable: C1 100 → 100 (9,000; 0; 0%), C2 50 → 60.5 (4,500 on the edge; 630; 10%),
    C3 400 → 400 (36,000 on the edge; 0; 0%).
    Not comparable: C4 49 (4,410, too small), C5 401 (36,090, too large), E1 (enterprise),
    Z1 (no usage before the window)."""
    spend = {
        "p1": (100, 144),
        "p2": (200, 242),
        "p3": (100, "121"),
        "c1": (100, 100),
        "c2": (50, "60.5"),
        "c3": (400, 400),
        "c4": (49, 49),
        "c5": (401, 401),
    }
    accounts = {}
    for external_id, (before, after) in spend.items():
        accounts[external_id] = account = make_account(external_id)
        daily(account, base_meter, HISTORY, [before] * 90 + [after] * 60)
    e1 = make_account("e1", segment=Segment.ENTERPRISE)
    daily(e1, base_meter, HISTORY, [100] * 150)
    z1 = make_account("z1")
    daily(z1, base_meter, START, [500] * 60)
    # Usage after the window: the report stops at the window's end.
    daily(make_account("s1", segment=Segment.SMB), base_meter, dt.date(2026, 6, 15), [1])
    # Activities: P1 three in the window (and one before it), P2 one, C1 two.
    person = make_user(Role.AE)
    for external_id, days in (("p1", (START, START, END)), ("p2", (dt.date(2026, 5, 1),)), ("c1", (START, END))):
        for day in days:
            Activity.objects.create(
                account=accounts[external_id], person=person, occurred_on=day, kind=ActivityKind.CALL
            )
    Activity.objects.create(
        account=accounts["p1"], person=person, occurred_on=START - dt.timedelta(days=1), kind=ActivityKind.CALL
    )
    return accounts


def build_review_company(ae, *, notes=("Call 0", "Call 1", "Call 2"), refreshed=(dt.date(2026, 10, 31),)) -> dict:
    """Three accounts (enterprise, mid-market, SMB) owned by ``ae`` with daily usage from
    2026-08-01 to 2026-11-10 (account i spends 100·i + k on day k), metrics refreshed on
    ``refreshed``, one call a day with each account from 2026-10-05 (``notes``) and the
    Batch API release (meter ``api``, feature ``api``) on 2026-09-15."""
    meter = Meter.objects.create(key="api", name="API calls", unit="call", feature="api")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="1")
    accounts = [
        Account.objects.create(external_id=f"ACC-{i}", name=f"Account {i}", segment=segment)
        for i, segment in enumerate((Segment.ENTERPRISE, Segment.MID_MARKET, Segment.SMB), start=1)
    ]
    first = dt.date(2026, 8, 1)
    rows = []
    for i, account in enumerate(accounts, start=1):
        for k in range((dt.date(2026, 11, 10) - first).days + 1):
            value = Decimal(100 * i + k)
            day = first + dt.timedelta(days=k)
            rows.append(
                DailyRollup(account=account, meter=meter, day=day, quantity=value, revenue=value, event_count=1)
            )
        Ownership.objects.create(account=account, person=ae, role=OwnerRole.LAND_AE, start_on=first)
    DailyRollup.objects.bulk_create(rows)
    for day in refreshed:
        refresh_metrics(as_of=day)
    activities = [
        Activity.objects.create(
            account=account, person=ae, occurred_on=dt.date(2026, 10, 5 + i), kind="call", notes=notes[i]
        )
        for i, account in enumerate(accounts)
    ]
    release = ProductRelease.objects.create(released_on=dt.date(2026, 9, 15), name="Batch API", features=["api"])
    release.meters.add(meter)
    return {"meter": meter, "accounts": accounts, "activities": activities, "release": release}


@pytest.fixture
def people(db, with_totp):
    """One person of each role that takes part in a review (the review workflow tests)."""
    finance = UserFactory(role=Role.FINANCE, name="Finn Ance")
    with_totp(finance)  # finance must have a second factor, or every page sends them to set one up
    return {
        "leader": UserFactory(role=Role.LEADER, name="Lena Leader"),
        "finance": finance,
        "product": UserFactory(role=Role.PRODUCT, name="Pat Product"),
        "ae": UserFactory(role=Role.AE, name="Avery Exec"),
        "csm": UserFactory(role=Role.CSM, name="Casey Success"),
    }


@pytest.fixture
def company(people):
    return build_review_company(people["ae"])
