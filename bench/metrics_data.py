"""A deterministic company for the metrics benchmark: ~16 million daily rollups, no raw events.

    python -m bench.metrics_data [--accounts 5000] [--months 18] [--as-of 2026-11-20] [--reuse]

``generate()`` fills an empty, migrated database: 38 people (20 AEs, 10 CSMs, 3 leaders,
2 finance, 2 product, 1 admin; teams Sales and Customer Success; ``people=200`` gives 120
AEs, 60 CSMs and 20 others, see ``people_counts``), 6 flat-priced meters,
5,000 accounts ``BENCH-00001…`` (10 % enterprise, 30 % mid-market, 60 % SMB; 8 % of them
divisions under ~150 parents, up to three levels), 1–2 contracts each (commit, hybrid,
credits, minimum; renewals amend the contract they follow), effective-dated owners (land
AE, CSM, an expand AE for about half, a few hand-overs), a few hundred activities, and
one ``DailyRollup`` row per account × meter × day used, from the first usage day (or the
start of the window, ``months`` before ``as_of``) to the day before ``as_of``.

Everything is decided in Python by ``random.Random(f"{seed}:…")`` and the ``as_of``
argument (never the wall clock). The rollups are then written by set-based SQL: one
parameter row per account × meter (archetype curve, level, seasonality, noise seed) is
copied into an unlogged scratch table, and ``INSERT … SELECT`` over ``generate_series``
expands it, one day per statement so the heap is in day order as in production, where
the fold appends each day's rows. The noise is ``hashint8extended`` of (account, meter,
day), so the same seed gives the same numbers. The rollup table's secondary indexes are
dropped and re-created inside the loading transaction (a failure rolls everything back),
then the table is vacuumed and analyzed.

Archetypes: healthy growth, strong expansion (a second ramp), plateau (flat for the last
weeks), sudden decline in the last two weeks, churned to zero, late start (no usage for
60+ days after the contract starts; a few not started yet).
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import io
import math
import random
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal

ACCOUNT_PREFIX = "BENCH-"
DATABASE_SUFFIX = "_metrics"
DEFAULT_AS_OF = dt.date(2026, 11, 20)
PASSWORD = "bench-metrics-password"  # noqa: S105 - a bench-only login, hashed once

SEGMENT_SHARES = (("enterprise", 0.10), ("mid-market", 0.30), ("smb", 0.60))
REGIONS = (("North America", 0.45), ("EMEA", 0.30), ("APAC", 0.17), ("LATAM", 0.08))
INDUSTRIES = (
    "Software",
    "Financial services",
    "Healthcare",
    "Retail",
    "Media",
    "Manufacturing",
    "Logistics",
    "Education",
    "Telecommunications",
    "Public sector",
)
NAME_A = (
    "Acme", "Blue", "Cedar", "Delta", "Ember", "Fable", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nimbus", "Orbit", "Pioneer", "Quartz", "Raven", "Summit", "Tidal",
    "Umber", "Vertex", "Willow", "Xenon", "Yarrow", "Zephyr",
)  # fmt: skip
NAME_B = (
    "Analytics", "Labs", "Systems", "Health", "Logistics", "Media", "Capital", "Robotics", "Foods",
    "Networks", "Energy", "Retail", "Bio", "Cloud", "Mobility", "Security", "Games", "Insurance",
)  # fmt: skip
DIVISION_NAMES = ("EMEA", "APAC", "Americas", "Consumer", "Enterprise", "Research", "Payments", "Platform")
PRICING_MODELS = (("commit", 0.55), ("hybrid", 0.20), ("credits", 0.15), ("minimum", 0.10))
ARCHETYPES = (
    ("healthy", 0.46),
    ("expand", 0.14),
    ("plateau", 0.14),
    ("decline", 0.10),
    ("churn", 0.08),
    ("late_start", 0.08),
)
# Committed ARR range (log-uniform) and rounding step by segment.
ARR_RANGE = {
    "enterprise": (120_000, 1_200_000, 5000),
    "mid-market": (25_000, 150_000, 1000),
    "smb": (3000, 25_000, 500),
}
NOISE_SIGMA = {"enterprise": 0.07, "mid-market": 0.11, "smb": 0.16}
PEOPLE_COUNTS = (("ae", 20), ("csm", 10), ("leader", 3), ("finance", 2), ("product", 2), ("admin", 1))
DEFAULT_PEOPLE = sum(n for _, n in PEOPLE_COUNTS)  # 38
ACTIVITY_TAGS = ("pricing", "expansion", "adoption", "risk", "renewal", "champion-left", "new-workload", "budget")


def people_counts(people: int = DEFAULT_PEOPLE) -> tuple[tuple[str, int], ...]:
    """Head count by role: the 38 above, or for another total 60 % AEs, 30 % CSMs and the
    rest leaders, finance, product and admins (200: 120, 60, 8, 5, 5, 2)."""
    if people == DEFAULT_PEOPLE:
        return PEOPLE_COUNTS
    if people < 12:
        raise ValueError("people must be at least 12")
    ae, csm = round(0.6 * people), round(0.3 * people)
    rest = people - ae - csm
    admin, finance, product = max(1, rest // 10), max(1, rest // 4), max(1, rest // 4)
    return (
        ("ae", ae),
        ("csm", csm),
        ("leader", rest - admin - finance - product),
        ("finance", finance),
        ("product", product),
        ("admin", admin),
    )


@dataclass(frozen=True)
class MeterSpec:
    key: str
    name: str
    unit: str
    product_line: str
    feature: str
    unit_price: str
    decimals: int
    weight: float  # typical share of an account's spend
    weekday_driven: bool  # False: a stock (storage), the same on weekends
    per_event: float  # typical quantity per raw event, for event_count


METERS: tuple[MeterSpec, ...] = (
    MeterSpec("api-calls", "API calls", "request", "Platform", "REST API", "0.0005", 0, 0.30, True, 40.0),
    MeterSpec("tokens-1k", "LLM tokens (1K)", "1K tokens", "AI", "Inference", "0.003", 3, 0.25, True, 2.5),
    MeterSpec("storage-gb", "Storage", "GB-day", "Data", "Object storage", "0.0008", 3, 0.10, False, 5000.0),
    MeterSpec("compute-minutes", "Compute minutes", "minute", "Compute", "Serverless jobs", "0.01", 2, 0.15, True, 3.0),
    MeterSpec("vector-queries", "Vector queries", "query", "Search", "Vector search", "0.0002", 0, 0.10, True, 20.0),
    MeterSpec("gpu-seconds", "GPU seconds", "second", "Accelerated", "GPU inference", "0.0009", 1, 0.10, True, 30.0),
)


# --- The plan (pure Python) -------------------------------------------------------------


@dataclass
class PersonPlan:
    email: str
    name: str
    role: str
    team: str | None
    started_on: dt.date


@dataclass
class ContractPlan:
    external_id: str
    pricing_model: str
    signed_on: dt.date
    start_on: dt.date
    end_on: dt.date
    committed_arr: Decimal
    tcv: Decimal
    included_units: Decimal | None
    base_fee: Decimal | None
    credits: Decimal | None
    deal_desk_estimate: Decimal
    ae_estimate: Decimal
    amends: str | None


@dataclass
class UsagePlan:
    """One account × meter: the curve its daily quantity follows (one SQL parameter row)."""

    meter: str
    first_day: dt.date  # first rollup row (the meter's first use, or the window start)
    last_day: dt.date  # last rollup row
    use_day: dt.date  # the account's first usage day: origin of the ramp
    base_qty: float  # daily quantity at level 1 (a weekday at as_of, no noise)
    growth: float  # per day, log scale
    flat_from: dt.date  # growth stops here (plateau)
    expand_at: dt.date  # centre of the second ramp (expansion)
    expand_amp: float  # its height (0: none)
    decline_at: dt.date  # from this day the level is multiplied by decline_keep
    decline_keep: float
    zero_at: dt.date  # churn: fades to zero over 30 days, no rows from this day on
    weekend: float
    sigma: float
    ramp_mid: float
    ramp_w: float

    @property
    def rows(self) -> int:
        return max(0, (self.last_day - self.first_day).days + 1)


@dataclass
class AccountPlan:
    external_id: str
    name: str
    segment: str
    region: str
    industry: str
    archetype: str
    status: str = "active"
    parent: str | None = None
    level: int = 1
    contracts: list[ContractPlan] = field(default_factory=list)
    usage: list[UsagePlan] = field(default_factory=list)
    # (role, person email, start, end or None)
    owners: list[tuple[str, str, dt.date, dt.date | None]] = field(default_factory=list)


@dataclass
class ActivityPlan:
    account: str
    person: str
    occurred_on: dt.date
    kind: str
    notes: str
    tags: list[str]


@dataclass
class CompanyPlan:
    as_of: dt.date
    window_start: dt.date
    seed: int
    people: list[PersonPlan]
    accounts: list[AccountPlan]
    activities: list[ActivityPlan]
    meters: tuple[MeterSpec, ...]

    @property
    def rollup_rows(self) -> int:
        return sum(u.rows for a in self.accounts for u in a.usage)


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], weights=[w for _, w in weighted])[0]


def _days(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _money(value: float, step: int) -> Decimal:
    return Decimal(max(step, round(value / step) * step))


def _cents(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _term_years(rng: random.Random, segment: str) -> int:
    if segment == "enterprise":
        return rng.choices((1, 2, 3), weights=(0.5, 0.3, 0.2))[0]
    if segment == "mid-market":
        return rng.choices((1, 2, 3), weights=(0.75, 0.2, 0.05))[0]
    return rng.choices((1, 2), weights=(0.9, 0.1))[0]


def plan_company(
    *,
    accounts: int = 5000,
    months: int = 18,
    meters: int = 6,
    as_of: dt.date,
    seed: int = 7,
    people: int = DEFAULT_PEOPLE,
) -> CompanyPlan:
    if not 1 <= meters <= len(METERS):
        raise ValueError(f"meters must be between 1 and {len(METERS)}")
    window_start = add_months(as_of, -months)
    staff = _plan_people(as_of, people_counts(people))
    specs = METERS[:meters]
    plan = CompanyPlan(as_of, window_start, seed, staff, [], [], specs)
    _plan_accounts(plan, random.Random(f"{seed}:accounts"), accounts)
    _plan_hierarchy(plan, random.Random(f"{seed}:hierarchy"))
    life = random.Random(f"{seed}:lifecycle")
    for a in plan.accounts:
        _plan_account_life(plan, life, a)
    _plan_owners(plan, random.Random(f"{seed}:owners"))
    _plan_activities(plan, random.Random(f"{seed}:activities"), count=max(1, accounts // 12))
    return plan


def _plan_people(as_of: dt.date, counts: tuple[tuple[str, int], ...] = PEOPLE_COUNTS) -> list[PersonPlan]:
    rng = random.Random("people")
    people = []
    for role, count in counts:
        # The last AEs and CSMs are recent hires (ramp quota relief): of 20 AEs and 10 CSMs,
        # AEs 19–20 and CSM 10 (of 120 and 60: 8 and 4); the rest long-tenured.
        new_hires = {"ae": max(2, count // 15), "csm": max(1, count // 15)}.get(role, 0)
        for i in range(1, count + 1):
            team = {"ae": "Sales", "csm": "Customer Success"}.get(role)
            recent = i > count - new_hires
            started = as_of - dt.timedelta(days=rng.randint(60, 200) if recent else rng.randint(500, 2000))
            label = {"ae": "AE", "csm": "CSM"}.get(role, role.capitalize())
            people.append(
                PersonPlan(f"bench-{role}-{i:02d}@example.com", f"Bench {label} {i:02d}", role, team, started)
            )
    return people


def _plan_accounts(plan: CompanyPlan, rng: random.Random, n: int) -> None:
    segments: list[str] = []
    for segment, share in SEGMENT_SHARES[:-1]:
        segments += [segment] * round(n * share)
    segments += [SEGMENT_SHARES[-1][0]] * (n - len(segments))
    rng.shuffle(segments)
    for i, segment in enumerate(segments, start=1):
        plan.accounts.append(
            AccountPlan(
                external_id=f"{ACCOUNT_PREFIX}{i:05d}",
                name=f"{rng.choice(NAME_A)} {rng.choice(NAME_B)} {i:05d}",
                segment=segment,
                region=_pick(rng, REGIONS),
                industry=rng.choice(INDUSTRIES),
                archetype=_pick(rng, ARCHETYPES),
            )
        )


def _plan_hierarchy(plan: CompanyPlan, rng: random.Random) -> None:
    """~150 parents (enterprise first), 8 % of accounts their divisions; 15 % one level deeper."""
    n = len(plan.accounts)
    n_parents = min(n // 10, max(1, round(150 * n / 5000))) if n >= 10 else 0
    n_divisions = min(round(0.08 * n), n - n_parents)
    if not n_parents or not n_divisions:
        return
    order = sorted(plan.accounts, key=lambda a: ({"enterprise": 0, "mid-market": 1, "smb": 2}[a.segment], rng.random()))
    parents = order[:n_parents]
    rest = order[n_parents:]
    rng.shuffle(rest)
    divisions = rest[:n_divisions]
    level2: list[AccountPlan] = []
    for i, d in enumerate(divisions):
        deep = level2 and i >= round(0.85 * n_divisions)
        parent = rng.choice(level2) if deep else parents[i % n_parents]
        d.parent = parent.external_id
        d.level = parent.level + 1
        d.region = parent.region if rng.random() < 0.5 else d.region
        d.name = f"{parent.name.rsplit(' ', 1)[0]} {rng.choice(DIVISION_NAMES)} {d.external_id[-5:]}"
        if d.level == 2:
            level2.append(d)


def _plan_account_life(plan: CompanyPlan, rng: random.Random, a: AccountPlan) -> None:
    """Contracts (1–2), the archetype's curve and the meters used, for one account."""
    as_of, window_start = plan.as_of, plan.window_start
    last_day = as_of - dt.timedelta(days=1)
    lo, hi, step = ARR_RANGE[a.segment]
    arr1 = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    model = _pick(rng, PRICING_MODELS)
    growth_by_kind = {"healthy": (1.05, 1.3), "expand": (1.2, 1.6), "late_start": (1.0, 1.1)}
    renewal_growth = rng.uniform(*growth_by_kind.get(a.archetype, (0.8, 1.05)))

    # Contract chain: (start, years); the current contract always covers as_of.
    chain: list[tuple[dt.date, int]] = []
    if a.archetype == "late_start":
        start = _days(rng, as_of - dt.timedelta(days=330), as_of - dt.timedelta(days=75))
        chain.append((start, _term_years(rng, a.segment)))
    elif rng.random() < 0.08:  # a new logo landed inside the window
        start = _days(rng, window_start, as_of - dt.timedelta(days=45))
        years = _term_years(rng, a.segment)
        chain.append((start, years))
        end = add_months(start, 12 * years)
        if end <= as_of:
            chain.append((end, _term_years(rng, a.segment)))
    elif rng.random() < 0.35:  # one multi-year contract that began before the window
        years = rng.choice((2, 3))
        first = add_months(as_of, -12 * years) + dt.timedelta(days=30)
        start = _days(rng, first, max(first, window_start - dt.timedelta(days=1)))
        chain.append((start, years))
    else:  # renewed inside the window: the current contract's start is spread over the window
        renewal = _days(rng, window_start + dt.timedelta(days=1), as_of - dt.timedelta(days=15))
        years = _term_years(rng, a.segment)
        while add_months(renewal, 12 * years) <= as_of:
            years += 1
        chain.append((add_months(renewal, -12 * _term_years(rng, a.segment)), 0))
        chain.append((renewal, years))
    if chain[0][1] == 0:  # the first of a renewal pair ends the day before the renewal
        start, _ = chain[0]
        chain[0] = (start, -1)

    first_start = chain[0][0]
    ttfbe = rng.randint(60, 160) if a.archetype == "late_start" else min(45, int(rng.expovariate(1 / 10)))
    use_day = first_start + dt.timedelta(days=ttfbe)

    # The level: annual consumption at level 1 = current committed ARR × burn.
    arr_now = arr1 * (renewal_growth if len(chain) > 1 else 1.0)
    burn = {
        "healthy": (0.8, 1.2),
        "expand": (0.55, 0.85),
        "plateau": (0.45, 0.75),
        "decline": (0.7, 1.1),
        "churn": (0.6, 1.0),
        "late_start": (0.5, 1.0),
    }[a.archetype]
    annual = arr_now * rng.uniform(*burn)
    far = as_of + dt.timedelta(days=3650)
    curve = {
        "growth": rng.uniform(0.0004, 0.0012),
        "flat_from": far,
        "expand_at": as_of,
        "expand_amp": 0.0,
        "decline_at": far,
        "decline_keep": 1.0,
        "zero_at": far,
    }
    if a.archetype == "expand":
        curve["growth"] = rng.uniform(0.0003, 0.0008)
        curve["expand_at"] = _days(
            rng, max(use_day + dt.timedelta(days=60), window_start), as_of - dt.timedelta(days=30)
        )
        curve["expand_amp"] = rng.uniform(0.5, 1.3)
    elif a.archetype == "plateau":
        curve["growth"] = rng.uniform(0.0008, 0.0015)
        curve["flat_from"] = as_of - dt.timedelta(days=rng.randint(45, 140))
    elif a.archetype == "decline":
        curve["growth"] = rng.uniform(0.0002, 0.0008)
        curve["decline_at"] = as_of - dt.timedelta(days=rng.randint(6, 14))
        curve["decline_keep"] = rng.uniform(0.2, 0.5)
    elif a.archetype == "churn":
        curve["growth"] = rng.uniform(0.0, 0.0005)
        earliest = max(window_start + dt.timedelta(days=150), use_day + dt.timedelta(days=90))
        curve["zero_at"] = _days(rng, earliest, max(earliest, as_of - dt.timedelta(days=20)))
        if curve["zero_at"] < as_of - dt.timedelta(days=90):
            a.status = "churned"
    elif a.archetype == "late_start":
        curve["growth"] = rng.uniform(0.0005, 0.0015)

    # Meters: api-calls always, 4–6 in all, some adopted after the first usage day.
    count = min(len(plan.meters), rng.choices((6, 5, 4), weights=(0.8, 0.14, 0.06))[0])
    others = list(plan.meters[1:])
    chosen = [plan.meters[0]]
    while len(chosen) < count:
        pick = rng.choices(others, weights=[m.weight for m in others])[0]
        others.remove(pick)
        chosen.append(pick)
    shares = [m.weight * rng.uniform(0.6, 1.4) for m in chosen]
    total = sum(shares)
    weekend = rng.uniform(0.35, 0.85)
    sigma = NOISE_SIGMA[a.segment] * rng.uniform(0.8, 1.25)
    ramp_mid = rng.uniform(20, 60) if a.segment == "smb" else rng.uniform(30, 90)
    for meter, share in zip(chosen, shares, strict=True):
        adopt = use_day
        if meter is not plan.meters[0] and rng.random() < 0.1:
            adopt = use_day + dt.timedelta(days=rng.randint(30, 300))
        first = max(adopt, window_start)
        last = min(last_day, curve["zero_at"] - dt.timedelta(days=1))
        daily_revenue = annual / 365 * share / total
        a.usage.append(
            UsagePlan(
                meter=meter.key,
                first_day=first,
                last_day=last,
                use_day=use_day,
                base_qty=daily_revenue / float(meter.unit_price),
                weekend=weekend if meter.weekday_driven else 1.0,
                sigma=sigma,
                ramp_mid=ramp_mid,
                ramp_w=ramp_mid / rng.uniform(3.5, 6.0),
                **curve,
            )
        )

    # Contract rows.
    arr = arr1
    previous: str | None = None
    main = a.usage[0]
    for n, (start, years) in enumerate(chain, start=1):
        if years == -1:
            end = chain[1][0] - dt.timedelta(days=1)
            years_paid = max(1, round((end - start).days / 365))
        else:
            end = add_months(start, 12 * years) - dt.timedelta(days=1)
            years_paid = years
        if n > 1:
            arr = arr1 * renewal_growth
        committed = _money(arr, step)
        tcv = _cents(float(committed) * ((end - start).days + 1) / 365)
        included = base_fee = credits = None
        if model == "hybrid":
            base_fee = _cents(float(committed) * 0.3 / 12)
            monthly = main.base_qty * 30.4 * (5 + 2 * main.weekend) / 7 * rng.uniform(0.8, 1.3)
            included = Decimal(int(monthly / 1000) * 1000 + 1000)
        elif model == "credits":
            credits = _cents(float(committed) * years_paid)
        signed = start - dt.timedelta(days=rng.randint(0, 30) if n == 1 else rng.randint(7, 45))
        external_id = f"{a.external_id}-C{n}"
        a.contracts.append(
            ContractPlan(
                external_id=external_id,
                pricing_model=model,
                signed_on=signed,
                start_on=start,
                end_on=end,
                committed_arr=committed,
                tcv=tcv,
                included_units=included,
                base_fee=base_fee,
                credits=credits,
                deal_desk_estimate=_money(float(committed) * rng.uniform(0.55, 0.9), 100),
                ae_estimate=_money(float(committed) * rng.uniform(0.85, 1.35), 100),
                amends=previous,
            )
        )
        previous = external_id


def _plan_owners(plan: CompanyPlan, rng: random.Random) -> None:
    """Land AE from signature, CSM from the first start, expand AE for about half; a few hand-overs.

    AEs 01–14 land, 15–20 expand (of another head count: the first 70 % land); books are
    mildly skewed (AE 01 has the biggest, about twice the smallest). Periods of one account and role never overlap: a hand-over ends
    the old one the day before.
    """
    aes = [p for p in plan.people if p.role == "ae"]
    csms = [p for p in plan.people if p.role == "csm"]
    n_land = round(0.7 * len(aes))  # 14 of 20
    land_aes, expand_aes = aes[:n_land], aes[n_land:]
    land_w = [1 / (i + 1) ** 0.3 for i in range(len(land_aes))]
    expand_w = [1 / (i + 1) ** 0.3 for i in range(len(expand_aes))]
    csm_w = [1 / (i + 1) ** 0.3 for i in range(len(csms))]
    as_of = plan.as_of
    for a in plan.accounts:
        first = a.contracts[0]
        land_from = first.signed_on - dt.timedelta(days=rng.randint(14, 60))
        land = rng.choices(land_aes, weights=land_w)[0]
        _periods(plan, rng, a, "land_ae", land, land_from, land_aes, share=0.06)
        csm = rng.choices(csms, weights=csm_w)[0]
        _periods(plan, rng, a, "csm", csm, first.start_on, csms, share=0.06)
        if rng.random() < 0.5:
            begin = add_months(first.start_on, 12)
            if begin >= as_of:
                begin = as_of - dt.timedelta(days=rng.randint(10, 100))
            expand = rng.choices(expand_aes, weights=expand_w)[0]
            _periods(plan, rng, a, "expand_ae", expand, max(begin, first.start_on), expand_aes, share=0.03)


def _periods(
    plan: CompanyPlan,
    rng: random.Random,
    a: AccountPlan,
    role: str,
    person: PersonPlan,
    begin: dt.date,
    pool: list[PersonPlan],
    *,
    share: float,
) -> None:
    change_lo = max(begin + dt.timedelta(days=30), plan.window_start)
    change_hi = plan.as_of - dt.timedelta(days=10)
    if rng.random() < share and change_lo < change_hi:
        on = _days(rng, change_lo, change_hi)
        successor = rng.choice([p for p in pool if p is not person] or pool)
        a.owners.append((role, person.email, begin, on - dt.timedelta(days=1)))
        a.owners.append((role, successor.email, on, None))
    else:
        a.owners.append((role, person.email, begin, None))


def _plan_activities(plan: CompanyPlan, rng: random.Random, *, count: int) -> None:
    kinds = ("call", "meeting", "email", "qbr", "note")
    for _ in range(count):
        a = rng.choice(plan.accounts)
        owners = [email for role, email, _b, end in a.owners if end is None]
        tags = rng.sample(ACTIVITY_TAGS, rng.randint(0, 3))
        plan.activities.append(
            ActivityPlan(
                account=a.external_id,
                person=rng.choice(owners),
                occurred_on=plan.as_of - dt.timedelta(days=rng.randint(0, 180)),
                kind=rng.choice(kinds),
                notes=f"Discussed {', '.join(tags) or 'usage'} with the customer ({a.archetype} account).",
                tags=tags,
            )
        )


# --- Loading ----------------------------------------------------------------------------


@dataclass
class GenerateResult:
    people: int
    meters: int
    accounts: int
    contracts: int
    ownerships: int
    activities: int
    rollups: int
    expected_rollups: int
    reference_s: float
    rollups_s: float
    indexes_s: float
    vacuum_s: float

    @property
    def total_s(self) -> float:
        return self.reference_s + self.rollups_s + self.indexes_s + self.vacuum_s


def generate(
    *,
    accounts: int = 5000,
    months: int = 18,
    meters: int = 6,
    as_of: dt.date,
    seed: int = 7,
    progress: bool = True,
    people: int = DEFAULT_PEOPLE,
) -> GenerateResult:
    """Fill the current (empty, migrated) database; Django must be set up.

    ``people``: head count (default 38, see ``people_counts``); the same seed and anchor
    give the same accounts, contracts and usage whatever the head count, not the same owners.
    """
    from django.db import connection

    def say(text: str) -> None:
        if progress:
            print(f"  {text}", flush=True)

    started = time.perf_counter()
    plan = plan_company(accounts=accounts, months=months, meters=meters, as_of=as_of, seed=seed, people=people)
    say(
        f"plan: {len(plan.accounts):,} accounts, {plan.rollup_rows:,} rollup rows expected "
        f"({plan.window_start} … {as_of - dt.timedelta(days=1)}), {time.perf_counter() - started:.1f} s"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_account")
        if cursor.fetchone()[0]:
            raise RuntimeError("generate() needs an empty database (accounts_account has rows)")

    from django.db import transaction

    with transaction.atomic():
        people = _load_people(plan)
        meter_ids = _load_meters(plan)
        account_ids = _load_accounts(plan)
        contracts = _load_contracts(plan, account_ids)
        ownerships = _load_owners(plan, account_ids, people)
        activities = _load_activities(plan, account_ids, people)
    reference_s = time.perf_counter() - started
    say(
        f"reference data: {len(people)} people, {len(meter_ids)} meters, {len(account_ids):,} accounts, "
        f"{contracts:,} contracts, {ownerships:,} ownerships, {activities} activities in {reference_s:.1f} s"
    )
    rows, rollups_s, indexes_s = _load_rollups(plan, account_ids, meter_ids, say)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) usage_dailyrollup")
        cursor.execute("ANALYZE")
    vacuum_s = time.perf_counter() - started
    say(f"VACUUM ANALYZE usage_dailyrollup, ANALYZE: {vacuum_s:.1f} s")
    return GenerateResult(
        people=len(people),
        meters=len(meter_ids),
        accounts=len(account_ids),
        contracts=contracts,
        ownerships=ownerships,
        activities=activities,
        rollups=rows,
        expected_rollups=plan.rollup_rows,
        reference_s=reference_s,
        rollups_s=rollups_s,
        indexes_s=indexes_s,
        vacuum_s=vacuum_s,
    )


def _load_people(plan: CompanyPlan) -> dict[str, int]:
    from django.contrib.auth.hashers import make_password

    from revops.models import Team, User

    password = make_password(PASSWORD)  # hashed once, shared by every bench person
    users = User.objects.bulk_create(
        [User(email=p.email, name=p.name, role=p.role, started_on=p.started_on, password=password) for p in plan.people]
    )
    by_email = {u.email: u for u in users}
    teams = {
        "Sales": Team.objects.create(name="Sales", manager=by_email["bench-leader-01@example.com"]),
        "Customer Success": Team.objects.create(
            name="Customer Success", manager=by_email["bench-leader-02@example.com"]
        ),
    }
    for name, team in teams.items():
        User.objects.filter(email__in=[p.email for p in plan.people if p.team == name]).update(team=team)
    return {u.email: u.id for u in users}


def _load_meters(plan: CompanyPlan) -> dict[str, int]:
    from usage.models import Meter, MeterTier

    meters = Meter.objects.bulk_create(
        [
            Meter(key=m.key, name=m.name, unit=m.unit, product_line=m.product_line, feature=m.feature)
            for m in plan.meters
        ]
    )
    # Flat price: one open-ended tier.
    MeterTier.objects.bulk_create(
        [
            MeterTier(meter=meter, up_to=None, unit_price=Decimal(m.unit_price))
            for meter, m in zip(meters, plan.meters, strict=True)
        ]
    )
    return {m.key: m.id for m in meters}


def _load_accounts(plan: CompanyPlan) -> dict[str, int]:
    from accounts.models import Account

    ids: dict[str, int] = {}
    for level in (1, 2, 3):  # parents before their divisions
        rows = [
            Account(
                external_id=a.external_id,
                name=a.name,
                parent_id=ids[a.parent] if a.parent else None,
                segment=a.segment,
                region=a.region,
                industry=a.industry,
                status=a.status,
            )
            for a in plan.accounts
            if a.level == level
        ]
        for row in Account.objects.bulk_create(rows, batch_size=1000):
            ids[row.external_id] = row.id
    return ids


def _load_contracts(plan: CompanyPlan, account_ids: dict[str, int]) -> int:
    from accounts.models import Contract

    ids: dict[str, int] = {}
    for generation in (0, 1):  # renewals after what they amend
        created = Contract.objects.bulk_create(
            [
                Contract(
                    external_id=c.external_id,
                    account_id=account_ids[a.external_id],
                    pricing_model=c.pricing_model,
                    signed_on=c.signed_on,
                    start_on=c.start_on,
                    end_on=c.end_on,
                    committed_arr=c.committed_arr,
                    tcv=c.tcv,
                    included_units=c.included_units,
                    base_fee=c.base_fee,
                    credits=c.credits,
                    deal_desk_estimate=c.deal_desk_estimate,
                    ae_estimate=c.ae_estimate,
                    ramp_days=90,
                    amends_id=ids[c.amends] if c.amends else None,
                )
                for a in plan.accounts
                for n, c in enumerate(a.contracts)
                if n == generation
            ],
            batch_size=1000,
        )
        ids.update({c.external_id: c.id for c in created})
    return len(ids)


def _load_owners(plan: CompanyPlan, account_ids: dict[str, int], people: dict[str, int]) -> int:
    from accounts.models import Ownership

    rows = [
        Ownership(account_id=account_ids[a.external_id], person_id=people[email], role=role, start_on=b, end_on=e)
        for a in plan.accounts
        for role, email, b, e in a.owners
    ]
    Ownership.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _load_activities(plan: CompanyPlan, account_ids: dict[str, int], people: dict[str, int]) -> int:
    from accounts.models import Activity

    Activity.objects.bulk_create(
        [
            Activity(
                account_id=account_ids[x.account],
                person_id=people[x.person],
                occurred_on=x.occurred_on,
                kind=x.kind,
                notes=x.notes,
                tags=x.tags,
            )
            for x in plan.activities
        ]
    )
    return len(plan.activities)


PARAMS_TABLE = "bench_metrics_params"

# One day of rollups for every account × meter in use that day. ``level`` is the curve:
# S-shaped ramp after the first usage day × exponential growth (stopping at flat_from) ×
# a second ramp (expansion) × a step down (sudden decline) × a 30-day fade (churn) ×
# weekday seasonality × log-normal-ish noise from two hashes of (account, meter, day).
ROLLUP_DAY_SQL = """
INSERT INTO usage_dailyrollup (account_id, meter_id, day, quantity, revenue, event_count)
SELECT account_id, meter_id, %(day)s::date, q, round(q * unit_price, 2), greatest(1, ceil(q / per_event))::bigint
FROM (
  SELECT p.account_id, p.meter_id, p.unit_price, p.per_event,
         greatest(round((p.base_qty * (
             1.0 / (1.0 + exp(-(((%(day)s::date - p.use_day)::float8) - p.ramp_mid) / p.ramp_w))
           * exp(p.growth * (least(%(day)s::date, p.flat_from) - %(as_of)s::date)::float8)
           * (1.0 + p.expand_amp / (1.0 + exp(-((%(day)s::date - p.expand_at)::float8) / 6.0)))
           * CASE WHEN %(day)s::date >= p.decline_at THEN p.decline_keep ELSE 1.0 END
           * least(1.0, greatest(0.03, (p.zero_at - %(day)s::date)::float8 / 30.0))
           * CASE WHEN extract(isodow FROM %(day)s::date) >= 6 THEN p.weekend ELSE 1.0 END
           * exp(p.sigma * 1.7 * (
                 (hashint8extended(p.noise_key + (%(day)s::date - DATE '2000-01-01'), %(seed)s) & 65535)::float8
               / 65535.0::float8
               + (hashint8extended(p.noise_key + (%(day)s::date - DATE '2000-01-01'), %(seed)s + 1) & 65535)::float8
               / 65535.0::float8
               - 1.0::float8))
         ))::numeric, p.decimals), p.min_qty) AS q
  FROM bench_metrics_params p
  WHERE %(day)s::date BETWEEN p.first_day AND p.last_day
) x
"""


def _load_rollups(
    plan: CompanyPlan, account_ids: dict[str, int], meter_ids: dict[str, int], say
) -> tuple[int, float, float]:
    """Expand the parameter rows, one day per statement, in one transaction.

    The secondary indexes of usage_dailyrollup are dropped first and re-created at the
    end with their exact definitions (a sort is much cheaper than 16M random index
    insertions); it is all one transaction, so a failure leaves the table as it was.
    """
    from django.db import connection, transaction

    spec = {m.key: m for m in plan.meters}
    buffer = io.StringIO()
    for a in plan.accounts:
        aid = account_ids[a.external_id]
        for u in a.usage:
            if u.rows <= 0:
                continue
            m = spec[u.meter]
            mid = meter_ids[u.meter]
            values = (
                aid, mid, m.unit_price, m.decimals, f"{Decimal(1).scaleb(-m.decimals)}", m.per_event,
                u.first_day, u.last_day, u.use_day, f"{u.base_qty:.6f}", f"{u.growth:.8f}", u.flat_from,
                u.expand_at, f"{u.expand_amp:.4f}", u.decline_at, f"{u.decline_keep:.4f}", u.zero_at,
                f"{u.weekend:.4f}", f"{u.sigma:.4f}", f"{u.ramp_mid:.3f}", f"{u.ramp_w:.3f}",
                aid * 1_000_003 + mid * 100_003 * 1_000,
            )  # fmt: skip
            buffer.write("\t".join(str(v) for v in values) + "\n")

    started = time.perf_counter()
    total = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("SET LOCAL max_parallel_maintenance_workers = 2")
        # The foreign keys are deferred: checked row by row at COMMIT, 16M queued trigger
        # events. Every id comes from the rows just inserted, so the checks are skipped for
        # this transaction only (replica role: no RI triggers; the table has no others).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(f"DROP TABLE IF EXISTS {PARAMS_TABLE}")
        cursor.execute(
            f"""CREATE UNLOGGED TABLE {PARAMS_TABLE} (
                account_id bigint, meter_id bigint, unit_price numeric, decimals int, min_qty numeric,
                per_event numeric, first_day date, last_day date, use_day date, base_qty float8, growth float8,
                flat_from date, expand_at date, expand_amp float8, decline_at date, decline_keep float8,
                zero_at date, weekend float8, sigma float8, ramp_mid float8, ramp_w float8, noise_key bigint)"""
        )
        with cursor.cursor.copy(f"COPY {PARAMS_TABLE} FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute(f"ANALYZE {PARAMS_TABLE}")
        # Secondary indexes and the unique constraint: dropped now, re-created below.
        cursor.execute(
            """SELECT i.relname, pg_get_indexdef(i.oid), c.conname, pg_get_constraintdef(c.oid)
               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
               LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
               WHERE x.indrelid = 'usage_dailyrollup'::regclass AND NOT x.indisprimary
               ORDER BY i.relname"""
        )
        indexes = cursor.fetchall()
        for index_name, _indexdef, constraint, _condef in indexes:
            if constraint:
                cursor.execute(f'ALTER TABLE usage_dailyrollup DROP CONSTRAINT "{constraint}"')
            else:
                cursor.execute(f'DROP INDEX "{index_name}"')
        day = plan.window_start
        last = plan.as_of - dt.timedelta(days=1)
        n_days = (last - day).days + 1
        i = 0
        while day <= last:
            cursor.execute(ROLLUP_DAY_SQL, {"day": day, "as_of": plan.as_of, "seed": plan.seed})
            total += cursor.rowcount
            i += 1
            if i % 61 == 0 or day == last:
                elapsed = time.perf_counter() - started
                say(f"rollups up to {day}: {total:,} rows, {elapsed:.0f} s ({total / elapsed:,.0f} rows/s)")
            day += dt.timedelta(days=1)
        rollups_s = time.perf_counter() - started
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        assert i == n_days
        started = time.perf_counter()
        for _index_name, indexdef, constraint, condef in indexes:
            if constraint:
                cursor.execute(f'ALTER TABLE usage_dailyrollup ADD CONSTRAINT "{constraint}" {condef}')
            else:
                cursor.execute(indexdef)
        indexes_s = time.perf_counter() - started
        say(
            f"re-created {len(indexes)} indexes of usage_dailyrollup ({', '.join(r[0] for r in indexes)}): {indexes_s:.1f} s"
        )
        cursor.execute(f"DROP TABLE {PARAMS_TABLE}")
    return total, rollups_s, indexes_s


# --- Database helpers for the benches ---------------------------------------------------


# Fingerprints of the reference data, computed the same way in Python and in SQL, so that
# --reuse notices a generator change that keeps the row counts (owners, contracts).
OWNER_PRINT_SQL = """
SELECT count(*), coalesce(sum(substr(a.external_id, 7)::bigint * (o.start_on - DATE '2000-01-01')
       * (substring(u.email FROM '([0-9]+)@')::int + 100 * length(o.role))), 0)
FROM accounts_ownership o JOIN accounts_account a ON a.id = o.account_id JOIN revops_user u ON u.id = o.person_id
"""
CONTRACT_PRINT_SQL = """
SELECT count(*), coalesce(sum(substr(a.external_id, 7)::bigint * (c.start_on - DATE '2000-01-01')
       + c.committed_arr), 0)
FROM accounts_contract c JOIN accounts_account a ON a.id = c.account_id
"""


def expected_counts(
    *, accounts: int, months: int, meters: int, as_of: dt.date, seed: int, people: int = DEFAULT_PEOPLE
) -> dict[str, object]:
    plan = plan_company(accounts=accounts, months=months, meters=meters, as_of=as_of, seed=seed, people=people)
    epoch = dt.date(2000, 1, 1)
    owners = [
        int(a.external_id[len(ACCOUNT_PREFIX) :])
        * (begin - epoch).days
        * (int(email.split("@")[0].rsplit("-", 1)[1]) + 100 * len(role))
        for a in plan.accounts
        for role, email, begin, _end in a.owners
    ]
    contracts = [
        int(a.external_id[len(ACCOUNT_PREFIX) :]) * (c.start_on - epoch).days + c.committed_arr
        for a in plan.accounts
        for c in a.contracts
    ]
    return {
        "accounts": len(plan.accounts),
        "meters": len(plan.meters),
        "rollups": plan.rollup_rows,
        "last_day": as_of - dt.timedelta(days=1),
        "ownerships": (len(owners), sum(owners)),
        "contracts": (len(contracts), sum(contracts)),
    }


def existing_matches(expected: dict[str, object]) -> tuple[bool, str]:
    """Whether the current database holds exactly the data ``generate()`` would write."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM accounts_account), (SELECT count(*) FROM usage_meter),"
            " (SELECT count(*) FROM usage_dailyrollup), (SELECT max(day) FROM usage_dailyrollup)"
        )
        accounts, meters, rollups, last_day = cursor.fetchone()
        cursor.execute(OWNER_PRINT_SQL)
        ownerships = tuple(cursor.fetchone())
        cursor.execute(CONTRACT_PRINT_SQL)
        contracts = tuple(cursor.fetchone())
    found = {
        "accounts": accounts,
        "meters": meters,
        "rollups": rollups,
        "last_day": last_day,
        "ownerships": ownerships,
        "contracts": contracts,
    }
    ok = all(found[k] == expected[k] for k in found)
    text = ", ".join(f"{k} {found[k]}" + ("" if found[k] == expected[k] else f" (want {expected[k]})") for k in found)
    return ok, text


def prepare_database(args: argparse.Namespace, *, suffix: str = DATABASE_SUFFIX) -> tuple[str, GenerateResult | None]:
    """Create, migrate and fill ``revops_bench_metrics`` (or reuse it with ``--reuse``).

    ``suffix`` names another database (``_comp``); ``args.people``, when present, the head count.
    """
    from bench import common

    url = common.database_url(suffix)
    people = getattr(args, "people", DEFAULT_PEOPLE)
    common.heading(
        f"data: {args.accounts:,} accounts, {args.months} months to {args.as_of} ({common.database_name(url)})"
    )
    common.note(common.machine_line())
    expected = expected_counts(
        accounts=args.accounts, months=args.months, meters=args.meters, as_of=args.as_of, seed=args.seed, people=people
    )
    if args.reuse:
        common.create_database(url)
        common.setup(url)
        ok, found = existing_matches(expected)
        if ok:
            common.note(f"--reuse: keeping the existing data ({found})")
            return url, None
        common.note(f"--reuse: the database does not hold the expected data ({found}); generating it again")
        from django.core.management import call_command
        from django.db import connections

        connections.close_all()
        common.create_database(url, drop_first=True)
        call_command("migrate", interactive=False, verbosity=0)
    else:
        common.create_database(url, drop_first=True)
        common.setup(url)
    result = generate(
        accounts=args.accounts, months=args.months, meters=args.meters, as_of=args.as_of, seed=args.seed, people=people
    )
    common.note(
        f"generated in {result.total_s:.0f} s: {result.rollups:,} DailyRollup rows "
        f"(reference data {result.reference_s:.0f} s, rollups {result.rollups_s:.0f} s, "
        f"indexes {result.indexes_s:.0f} s, vacuum/analyze {result.vacuum_s:.0f} s)"
    )
    return url, result


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=int, default=5000, help="Accounts (default 5,000).")
    parser.add_argument("--months", type=int, default=18, help="Months of daily rollups before --as-of (default 18).")
    parser.add_argument("--meters", type=int, default=len(METERS), help="Meters, 1–6 (default 6).")
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF, help="The metrics day (default 2026-11-20)."
    )
    parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
    parser.add_argument(
        "--reuse", action="store_true", help="Keep revops_bench_metrics when it already holds this data."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_data", description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    prepare_database(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
