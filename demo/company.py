"""The demo company behind `make run`: people, accounts, contracts, meters and usage.

Two halves:

* ``plan_company`` and ``usage_csv_chunks`` are pure Python: a ``random.Random(seed)``
  and the ``as_of`` anchor decide everything (no wall clock, no set iteration, no
  database), so the same arguments give the same company byte for byte.
* ``load_company`` writes a plan: reference data with ``bulk_create``; usage as a CSV
  stream through ``usage.ingestion.csv_import.import_usage_stream`` (the real bulk path: SQL
  validation, COPY, the API's store statement) and then ``fold_all_deltas``.

People are staffed for the company's size and books are dealt out to them in proportion
to set weights (``BOOKS``), so territories look real at any size. The usage window is the
``months`` calendar months before ``as_of``; the last day with usage is the day before
``as_of`` (today is not over yet). Each account follows one
archetype (healthy, expand, stall, decline, churn, late start) on top of an S-shaped
ramp after its first billable event, with weekday seasonality, multiplicative noise,
meters adopted over time, new workloads/regions, and lifts from product releases.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

DEMO_PREFIX = "DEMO-"

# --- Fixed facts -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraPerson:
    email: str
    name: str
    role: str
    team: str
    # Days before ``as_of`` the person started (ramp quota relief); None: long-tenured.
    started_days_ago: int | None = None


# Added to the six documented demo people (demo.data), same password, no TOTP. A company
# staffs only the people its size needs (see BOOKS), so a small demo has fewer of them.
EXTRA_PEOPLE: tuple[ExtraPerson, ...] = (
    # Land AEs: new logos.
    ExtraPerson("blake.morgan@example.com", "Blake Morgan", "ae", "Sales"),
    ExtraPerson("riley.chen@example.com", "Riley Chen", "ae", "Sales", started_days_ago=150),
    ExtraPerson("jordan.kim@example.com", "Jordan Kim", "ae", "Sales"),
    ExtraPerson("priya.raman@example.com", "Priya Raman", "ae", "Sales"),
    ExtraPerson("marcus.webb@example.com", "Marcus Webb", "ae", "Sales"),
    ExtraPerson("elena.rossi@example.com", "Elena Rossi", "ae", "Sales"),
    ExtraPerson("tomas.herrera@example.com", "Tomás Herrera", "ae", "Sales"),
    ExtraPerson("hana.sato@example.com", "Hana Sato", "ae", "Sales"),
    ExtraPerson("femi.adeyemi@example.com", "Femi Adeyemi", "ae", "Sales"),
    ExtraPerson("isabel.ortiz@example.com", "Isabel Ortiz", "ae", "Sales"),
    ExtraPerson("ravi.menon@example.com", "Ravi Menon", "ae", "Sales"),
    # Expand AEs / account managers: enterprise and mid-market accounts after their first year.
    ExtraPerson("sam.patel@example.com", "Sam Patel", "ae", "Sales"),
    ExtraPerson("drew.okafor@example.com", "Drew Okafor", "ae", "Sales"),
    ExtraPerson("nadia.haddad@example.com", "Nadia Haddad", "ae", "Sales"),
    ExtraPerson("owen.fischer@example.com", "Owen Fischer", "ae", "Sales"),
    # CSMs.
    ExtraPerson("jamie.rivera@example.com", "Jamie Rivera", "csm", "Customer Success"),
    ExtraPerson("taylor.brooks@example.com", "Taylor Brooks", "csm", "Customer Success"),
    ExtraPerson("quinn.novak@example.com", "Quinn Novak", "csm", "Customer Success"),
    ExtraPerson("leah.goldberg@example.com", "Leah Goldberg", "csm", "Customer Success"),
)
# Who owns accounts in each role, in staffing order, with each person's share of new
# accounts relative to the others. A company staffs the first round(accounts in the role ÷
# BOOK_SIZE) of each list, at least MIN_STAFF, so books keep a realistic size whatever the
# company's size, and the documented AE and CSM (first in their lists) always have one.
# The documented AE is a hybrid seller: a smaller land book plus expand accounts.
BOOKS: dict[str, tuple[tuple[str, float], ...]] = {
    "land_ae": (
        ("ae@example.com", 0.5),
        ("blake.morgan@example.com", 1.0),
        ("riley.chen@example.com", 1.3),  # a new hire: from their start only
        ("jordan.kim@example.com", 1.1),
        ("priya.raman@example.com", 0.9),
        ("marcus.webb@example.com", 1.0),
        ("elena.rossi@example.com", 1.2),
        ("tomas.herrera@example.com", 0.85),
        ("hana.sato@example.com", 1.0),
        ("femi.adeyemi@example.com", 0.95),
        ("isabel.ortiz@example.com", 1.05),
        ("ravi.menon@example.com", 0.9),
    ),
    "expand_ae": (
        ("sam.patel@example.com", 1.1),
        ("drew.okafor@example.com", 1.0),
        ("ae@example.com", 1.0),
        ("nadia.haddad@example.com", 0.95),
        ("owen.fischer@example.com", 1.05),
    ),
    "csm": (
        ("csm@example.com", 1.0),
        ("jamie.rivera@example.com", 1.1),
        ("taylor.brooks@example.com", 0.95),
        ("quinn.novak@example.com", 1.0),
        ("leah.goldberg@example.com", 1.05),
    ),
}
BOOK_SIZE = {"land_ae": 33, "expand_ae": 20, "csm": 75}
MIN_STAFF = {"land_ae": 3, "expand_ae": 2, "csm": 2}
# Segments whose accounts move to an expand AE a year after land; SMB stays with its CSM.
EXPAND_SEGMENTS = ("enterprise", "mid-market")
NEW_AE = "riley.chen@example.com"
NEW_CSM = "quinn.novak@example.com"
# Share of the other land AEs' young customers the new AE takes over, and of the other
# CSMs' accounts the new CSM takes over, when they start.
TERRITORY_SPLIT = 0.15
CSM_REBALANCE = 0.2


@dataclass(frozen=True)
class MeterSpec:
    key: str
    name: str
    unit: str
    product_line: str
    feature: str
    # (up_to per month or None for the open tier, unit price as a decimal string)
    tiers: tuple[tuple[str | None, str], ...]
    decimals: int  # quantity decimals in events (0: integers)
    weekday_driven: bool  # False: a stock such as storage, the same every day
    adoption: float  # share of customer accounts that use it at some point
    weight: float  # typical share of an account's spend


METERS: tuple[MeterSpec, ...] = (
    MeterSpec("api-calls", "API calls", "request", "Platform", "REST API", ((None, "0.0005"),), 0, True, 0.9, 0.35),
    MeterSpec(
        "tokens-1k",
        "LLM tokens (1K)",
        "1K tokens",
        "AI",
        "Inference",
        (("1000000", "0.004"), ("10000000", "0.003"), (None, "0.002")),
        3,
        True,
        0.65,
        0.35,
    ),
    MeterSpec(
        "storage-gb", "Storage", "GB-day", "Platform", "Object storage", ((None, "0.0008"),), 3, False, 0.5, 0.15
    ),
    MeterSpec(
        "compute-minutes",
        "Compute minutes",
        "minute",
        "Compute",
        "Serverless jobs",
        ((None, "0.01"),),
        2,
        True,
        0.4,
        0.2,
    ),
    MeterSpec(
        "vector-queries", "Vector queries", "query", "AI", "Vector search", ((None, "0.0002"),), 0, True, 0.3, 0.15
    ),
)
METER_BY_KEY = {m.key: m for m in METERS}


@dataclass(frozen=True)
class ReleaseSpec:
    name: str
    meter: str
    flag: str  # the event property ``feature`` adopters' events carry once they use it
    features: tuple[str, ...]
    notes: str
    at_fraction: float  # where in the usage window it ships
    adopter_share: float
    lift: tuple[float, float]  # adopters' lift on the meter, drawn from this range


RELEASES: tuple[ReleaseSpec, ...] = (
    ReleaseSpec(
        "Batch inference API",
        "tokens-1k",
        "batch-api",
        ("Inference", "batch-api"),
        "Asynchronous batch jobs at half latency cost; unlocks offline summarization and backfills.",
        0.25,
        0.35,
        (0.25, 0.6),
    ),
    ReleaseSpec(
        "Vector search GA",
        "vector-queries",
        "hybrid-search",
        ("Vector search", "hybrid-search"),
        "General availability: hybrid search, filters and a 99.9% SLA (beta users were capped).",
        0.4,
        0.5,
        (0.4, 0.9),
    ),
    ReleaseSpec(
        "Streaming compute",
        "compute-minutes",
        "streaming",
        ("Serverless jobs", "streaming"),
        "Long-running streaming jobs on serverless compute.",
        0.6,
        0.3,
        (0.2, 0.5),
    ),
    ReleaseSpec(
        "Storage lifecycle tiers",
        "storage-gb",
        "lifecycle-tiers",
        ("Object storage", "lifecycle-tiers"),
        "Automatic tiering makes keeping history cheaper, so customers keep more of it.",
        0.8,
        0.35,
        (0.15, 0.35),
    ),
)

SEGMENT_SHARES = (("enterprise", 0.15), ("mid-market", 0.35))  # the rest is smb
REGIONS = (("North America", 0.45), ("EMEA", 0.3), ("APAC", 0.18), ("LATAM", 0.07))
CLOUD_REGIONS = {
    "North America": ("us-east-1", "us-west-2", "ca-central-1"),
    "EMEA": ("eu-west-1", "eu-central-1", "uk-south-1"),
    "APAC": ("ap-southeast-1", "ap-northeast-1", "ap-south-1"),
    "LATAM": ("sa-east-1", "us-east-1"),
}
ALL_CLOUD_REGIONS = (
    "us-east-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-central-1",
    "uk-south-1",
    "ap-southeast-1",
    "ap-northeast-1",
    "ap-south-1",
    "sa-east-1",
)
INDUSTRIES = (
    "Software",
    "Financial services",
    "Healthcare",
    "Retail & e-commerce",
    "Media & entertainment",
    "Manufacturing",
    "Logistics",
    "Education",
    "Public sector",
    "Telecommunications",
)
WORKLOADS = (
    "prod-api",
    "chat-assistant",
    "search",
    "batch-etl",
    "analytics",
    "summarization",
    "fraud-scoring",
    "recommendations",
    "doc-ingest",
    "support-bot",
)
NAME_HEADS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell",
    "Cyberdyne", "Wonka", "Gringotts", "Oceanic", "Pied Piper", "Aperture", "Black Mesa", "Massive Dynamic",
    "Monarch", "Nakatomi", "Prestige", "Sterling", "Blue Harbor", "Northwind", "Contoso", "Fabrikam",
    "Tailspin", "Woodgrove", "Litware", "Proseware", "Adatum", "Lucerne", "Margie's", "Fourth Coffee",
    "Alpine", "Coho", "Trey", "Wingtip", "Bellows", "Halcyon", "Juniper", "Kestrel", "Lumen", "Meridian",
    "Nimbus", "Orion", "Parallax", "Quartz", "Redwood", "Sable", "Tidewater", "Vertex", "Zephyr", "Ironclad",
)  # fmt: skip
NAME_TAILS = (
    "Analytics", "Logistics", "Health", "Bank", "Labs", "Systems", "Retail", "Media", "Energy", "Robotics",
    "Insurance", "Foods", "Mobility", "Security", "Cloud", "Capital", "Pharma", "Telecom", "Learning", "Games",
)  # fmt: skip
DIVISION_SUFFIXES = ("North America", "EMEA", "APAC", "LATAM", "Digital", "Labs", "Consumer", "Enterprise")

# Archetype: (weight, realization range: first-phase consumption ÷ committed ARR)
ARCHETYPES = {
    "healthy": (0.40, (0.75, 1.15)),
    "expand": (0.18, (0.8, 1.0)),
    "stall": (0.12, (0.18, 0.38)),
    "decline": (0.10, (0.8, 1.05)),
    "churn": (0.10, (0.45, 0.85)),
    "late_start": (0.10, (0.7, 1.05)),
}
ARR_RANGE = {"enterprise": (120_000, 1_500_000), "mid-market": (30_000, 250_000), "smb": (5_000, 40_000)}
ARR_ROUND = {"enterprise": 5_000, "mid-market": 1_000, "smb": 500}
NOISE_SIGMA = {"enterprise": (0.05, 0.14), "mid-market": (0.08, 0.22), "smb": (0.14, 0.35)}
PRICING_MODELS = (("commit", 0.45), ("hybrid", 0.25), ("credits", 0.15), ("minimum", 0.15))


# --- The plan --------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonPlan:
    email: str
    name: str
    role: str
    team: str
    started_on: dt.date | None


@dataclass
class MeterUse:
    key: str
    start: int  # first day index with usage
    daily_revenue: float  # at full ramp, before seasonality and noise
    ramp_mid: float  # own ramp (days after start) for meters adopted after the first; 0: none
    ramp_width: float
    # Share of days with usage: small accounts run side workloads in bursts (same expected volume).
    duty: float = 1.0
    # (day index the account adopts a release, lift, the release's feature flag)
    lifts: list[tuple[int, float, str]] = field(default_factory=list)


@dataclass
class Stream:
    """An extra workload (and region) the account adds on ``start``."""

    workload: str
    region: str
    start: int


@dataclass
class AccountSpec:
    idx: int
    external_id: str
    name: str
    segment: str
    region: str
    industry: str
    status: str = "active"
    parent: str | None = None
    archetype: str = "prospect"
    land_on: dt.date | None = None
    churn_on: dt.date | None = None  # first day no longer a customer
    arr: int = 0  # first contract's committed ARR
    target: float = 0.0  # annual consumption at full first-phase ramp
    first_use: int = 0  # day index of the first billable event
    ramp_mid: float = 60.0
    ramp_width: float = 15.0
    drift: float = 0.0  # organic monthly growth once ramped
    weekend: float = 0.6
    sigma: float = 0.1
    expand_at: int | None = None
    expand_amp: float = 0.0
    decline_at: int | None = None
    decline_depth: float = 0.0
    # A step drop in the last days (the CSM triage queue's sudden-decline alerts).
    sudden_drop_at: int | None = None
    zero_at: int | None = None  # no usage from this day index
    home_region: str = ""
    home_workload: str = ""
    meters: list[MeterUse] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)


@dataclass(frozen=True)
class OwnershipPlan:
    account: str
    person: str
    role: str
    start_on: dt.date
    end_on: dt.date | None


@dataclass(frozen=True)
class ContractPlan:
    external_id: str
    account: str
    pricing_model: str
    signed_on: dt.date
    start_on: dt.date
    end_on: dt.date
    committed_arr: Decimal
    tcv: Decimal
    included_units: Decimal | None
    included_meter: str
    base_fee: Decimal | None
    credits: Decimal | None
    deal_desk_estimate: Decimal | None  # None: the deal desk has not estimated it yet
    ae_estimate: Decimal
    ramp_days: int
    amends: str | None


@dataclass(frozen=True)
class ReleasePlan:
    name: str
    released_on: dt.date
    meter: str
    features: tuple[str, ...]
    notes: str
    adopters: tuple[str, ...]


@dataclass(frozen=True)
class ActivityPlan:
    account: str
    person: str
    occurred_on: dt.date
    kind: str
    notes: str
    tags: tuple[str, ...]


@dataclass
class CompanyPlan:
    seed: int
    as_of: dt.date
    window_start: dt.date
    people: list[PersonPlan]
    accounts: list[AccountSpec]
    ownerships: list[OwnershipPlan]
    contracts: list[ContractPlan]
    releases: list[ReleasePlan]
    activities: list[ActivityPlan]

    @property
    def days(self) -> int:
        return (self.as_of - self.window_start).days

    def day(self, index: int) -> dt.date:
        return self.window_start + dt.timedelta(days=index)

    def index(self, day: dt.date) -> int:
        return (day - self.window_start).days


def add_months(day: dt.date, months: int) -> dt.date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return day.replace(year=year, month=month0 + 1, day=min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def segment_counts(accounts: int) -> dict[str, int]:
    """Exact accounts per segment: 15% enterprise, 35% mid-market, the rest SMB (half up)."""
    counts = {name: int(accounts * share + 0.5) for name, share in SEGMENT_SHARES}
    counts["smb"] = accounts - sum(counts.values())
    return counts


def _sigmoid(x: float) -> float:
    if x < -40:
        return 0.0
    if x > 40:
        return 1.0
    return 1.0 / (1.0 + math.exp(-x))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _money(value: float, step: int = 1) -> Decimal:
    return Decimal(round(value / step) * step)


def _cents(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def tier_cost(meter: MeterSpec, volume: float) -> float:
    """Price of a month's volume under the meter's tiers (float, for planning only)."""
    cost, lower = 0.0, 0.0
    for up_to, price in meter.tiers:
        upper = float(up_to) if up_to is not None else math.inf
        if volume > lower:
            cost += (min(volume, upper) - lower) * float(price)
        lower = upper
    return cost


def effective_price(meter: MeterSpec, daily_revenue: float) -> float:
    """Average unit price at the monthly volume that this daily spend buys."""
    price = float(meter.tiers[0][1])
    for _ in range(6):  # fixed point: volume depends on the blended price
        volume = daily_revenue * 30.4 / price
        price = tier_cost(meter, volume) / volume if volume > 0 else price
    return price


def plan_company(*, seed: int = 42, accounts: int = 400, months: int = 18, as_of: dt.date) -> CompanyPlan:
    """Everything about the demo company except the usage events themselves (see usage_csv_chunks)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    window_start = add_months(as_of, -months)
    plan = CompanyPlan(seed, as_of, window_start, [], [], [], [], [], [])
    _plan_accounts(plan, rng, accounts)
    _plan_lifecycles(plan, rng)
    _plan_contracts(plan, rng)
    _plan_usage(plan, rng)
    # Own random streams: books, planned deals and notes can change without changing the usage.
    books = _plan_people(plan)
    _plan_ownership(plan, random.Random(f"{seed}:ownership"), books)  # noqa: S311
    _plan_planned_contracts(plan, random.Random(f"{seed}:planned"))  # noqa: S311
    _plan_activities(plan, random.Random(f"{seed}:activities"))  # noqa: S311
    return plan


def _plan_accounts(plan: CompanyPlan, rng: random.Random, n: int) -> None:
    counts = segment_counts(n)
    segments = ["enterprise"] * counts["enterprise"] + ["mid-market"] * counts["mid-market"] + ["smb"] * counts["smb"]
    names = [f"{h} {t}" for h in NAME_HEADS for t in NAME_TAILS]
    rng.shuffle(names)
    heads_used: list[str] = []
    for i, segment in enumerate(segments):
        base = names[i % len(names)]
        name = base if i < len(names) else f"{base} {i // len(names) + 1}"
        heads_used.append(name)
        plan.accounts.append(
            AccountSpec(
                idx=i,
                external_id=f"{DEMO_PREFIX}{i + 1:04d}",
                name=name,
                segment=segment,
                region=_pick(rng, REGIONS),
                industry=rng.choice(INDUSTRIES),
            )
        )
    # Hierarchies: ~1 parent per 20 accounts (enterprise), each with 2–4 divisions drawn
    # from the other enterprise and mid-market accounts.
    enterprise = [a for a in plan.accounts if a.segment == "enterprise"]
    parents = enterprise[: min(n // 20, len(enterprise) // 2)]
    pool = [a for a in plan.accounts if a.segment in ("enterprise", "mid-market") and a not in parents]
    rng.shuffle(pool)
    for parent in parents:
        suffixes = list(DIVISION_SUFFIXES)
        rng.shuffle(suffixes)
        for k in range(rng.randint(2, 4)):
            if not pool:
                break
            child = pool.pop()
            child.parent = parent.external_id
            child.name = f"{parent.name} {suffixes[k]}"
            child.industry = parent.industry
            if suffixes[k] in CLOUD_REGIONS:
                child.region = suffixes[k]


def _plan_lifecycles(plan: CompanyPlan, rng: random.Random) -> None:
    """Land dates, prospects and archetypes."""
    n_days = plan.days
    in_hierarchy = {a.parent for a in plan.accounts if a.parent} | {a.external_id for a in plan.accounts if a.parent}
    weights = [(name, w) for name, (w, _) in ARCHETYPES.items()]
    for a in plan.accounts:
        # ~4% prospects, never inside a hierarchy and never enterprise.
        if a.segment != "enterprise" and a.external_id not in in_hierarchy and rng.random() < 0.045:
            a.status, a.archetype = "prospect", "prospect"
            continue
        # 30% were customers before the window; the rest land during it.
        if rng.random() < 0.3:
            a.land_on = plan.window_start - dt.timedelta(days=rng.randint(60, 900))
        else:
            a.land_on = plan.window_start + dt.timedelta(days=rng.randint(-30, max(0, n_days - 21)))
        a.archetype = _pick(rng, tuple(weights))
        if a.archetype == "churn" and a.external_id in in_hierarchy:
            a.archetype = "decline"
        lo, hi = ARR_RANGE[a.segment]
        a.arr = int(_money(math.exp(rng.uniform(math.log(lo), math.log(hi))), ARR_ROUND[a.segment]))
        if a.parent is None and any(c.parent == a.external_id for c in plan.accounts):
            a.arr = int(_money(a.arr * 1.5, ARR_ROUND[a.segment]))
        a.target = a.arr * rng.uniform(*ARCHETYPES[a.archetype][1])
        a.home_region = rng.choice(CLOUD_REGIONS[a.region])
        a.home_workload = rng.choice(WORKLOADS[:4])
        a.weekend = rng.uniform(0.35, 0.9)
        a.sigma = rng.uniform(*NOISE_SIGMA[a.segment])
        a.ramp_mid = rng.uniform(35, 110) if a.segment != "smb" else rng.uniform(20, 60)
        a.ramp_width = a.ramp_mid / rng.uniform(3.5, 6.0)
        a.drift = rng.uniform(-0.005, 0.02) if a.archetype in ("healthy", "expand", "late_start") else 0.0


def _plan_contracts(plan: CompanyPlan, rng: random.Random) -> None:
    """Contract chains from the land date to today, with renewals, recommits and churn."""
    as_of, start = plan.as_of, plan.window_start
    for a in plan.accounts:
        if a.land_on is None:
            continue
        signed = a.land_on
        begin = signed + dt.timedelta(days=rng.randint(0, 14))
        ttfbe = rng.randint(45, 150) if a.archetype == "late_start" else int(rng.expovariate(1 / 12))
        a.first_use = plan.index(begin) + ttfbe
        if a.archetype == "expand":
            # Mostly inside the window, so the second ramp is there to see.
            a.expand_at = max(a.first_use + rng.randint(120, 330), rng.randint(30, max(30, plan.days - 45)))
            a.expand_amp = rng.uniform(0.5, 1.3)
        if a.archetype == "decline":
            a.decline_at = max(a.first_use + rng.randint(90, 300), rng.randint(plan.days // 4, plan.days - 30))
            a.decline_depth = rng.uniform(0.4, 0.7)
            # Without drawing from rng (the rest of the company stays as it was): every third
            # declining account also falls off a cliff 4–6 days before as_of.
            number = int(a.external_id.rsplit("-", 1)[-1])
            if number % 3 == 0 and a.first_use < plan.days - 120:
                a.sudden_drop_at = plan.days - 4 - number % 3 - (number // 3) % 3
        arr = float(a.arr)
        model = _pick(rng, PRICING_MODELS)
        previous: str | None = None
        n = 0
        recommitted = False
        while True:
            n += 1
            years = _term_years(rng, a.segment)
            end = add_months(begin, 12 * years) - dt.timedelta(days=1)
            # An expanding account recommits mid-term at a higher floor (multi-year).
            if (
                a.expand_at is not None
                and not recommitted
                and begin < plan.day(a.expand_at + 75) <= min(end, as_of - dt.timedelta(days=1))
            ):
                end = plan.day(a.expand_at + 74)
            contract = _contract(plan, rng, a, n, model, signed, begin, end, arr, previous, years)
            plan.contracts.append(contract)
            previous = contract.external_id
            if end >= as_of:
                break
            # Churn: the first renewal inside the window (after a few months of history) is not signed.
            if a.archetype == "churn" and end >= start + dt.timedelta(days=90):
                a.churn_on = end + dt.timedelta(days=1)
                a.status = "churned"
                a.zero_at = min(plan.index(a.churn_on) - rng.randint(0, 40), plan.days)
                break
            recommit = a.expand_at is not None and not recommitted and end == plan.day(a.expand_at + 74)
            if recommit:
                recommitted = True
                arr *= rng.uniform(1.35, 1.8)
                signed = end - dt.timedelta(days=rng.randint(3, 20))
            else:
                growth = {"healthy": (1.05, 1.3), "expand": (1.1, 1.4), "late_start": (1.0, 1.2)}.get(
                    a.archetype, (0.75, 1.0)
                )
                arr *= rng.uniform(*growth)
                signed = end - dt.timedelta(days=rng.randint(7, 45))
            begin = end + dt.timedelta(days=1)
        if a.archetype == "churn" and a.churn_on is None:
            # Its contract runs past today: usage fades to zero anyway (an at-risk account).
            a.zero_at = max(a.first_use + 90, plan.days - rng.randint(15, 60))


def _term_years(rng: random.Random, segment: str) -> int:
    if segment == "enterprise":
        return rng.choices((1, 2, 3), weights=(0.6, 0.25, 0.15))[0]
    if segment == "mid-market":
        return rng.choices((1, 2), weights=(0.85, 0.15))[0]
    return 1


def _contract(
    plan: CompanyPlan,
    rng: random.Random,
    a: AccountSpec,
    n: int,
    model: str,
    signed: dt.date,
    begin: dt.date,
    end: dt.date,
    arr: float,
    amends: str | None,
    years: int,
) -> ContractPlan:
    committed = _money(arr, ARR_ROUND[a.segment])
    term_days = (end - begin).days + 1
    tcv = _cents(float(committed) * term_days / 365)
    included = base_fee = credits = None
    if model == "hybrid":
        base_fee = _cents(float(committed) * 0.35 / 12)
        # Included volume of the account's main meter: about a month of expected usage.
        main = METERS[0]
        monthly = a.target * main.weight / float(main.tiers[0][1]) / 12
        included = Decimal(int(monthly * rng.uniform(0.8, 1.3) / 1000) * 1000 + 1000)
    elif model == "credits":
        credits = _cents(float(committed) * max(1, years))
    return ContractPlan(
        external_id=f"{a.external_id}-C{n}",
        account=a.external_id,
        pricing_model=model,
        signed_on=signed,
        start_on=begin,
        end_on=end,
        committed_arr=committed,
        tcv=tcv,
        included_units=included,
        included_meter=METERS[0].key if included is not None else "",
        base_fee=base_fee,
        credits=credits,
        deal_desk_estimate=_money(float(committed) * rng.uniform(0.55, 0.9), 100),
        ae_estimate=_money(float(committed) * rng.uniform(0.85, 1.35), 100),
        ramp_days=120 if a.segment == "enterprise" else 90,
        amends=amends,
    )


def _handoff(plan: CompanyPlan, a: AccountSpec) -> dt.date | None:
    """The day an enterprise or mid-market account moves to an expand AE (a year after
    land), if that day has come while it is still a customer."""
    if a.land_on is None or a.segment not in EXPAND_SEGMENTS:
        return None
    handoff = add_months(a.land_on, 12)
    last = a.churn_on - dt.timedelta(days=1) if a.churn_on else None
    return handoff if handoff < plan.as_of and (last is None or handoff < last) else None


def _plan_people(plan: CompanyPlan) -> dict[str, tuple[tuple[str, float], ...]]:
    """Staff each role for the company's size (see BOOKS); the people are those staffed."""
    customers = [a for a in plan.accounts if a.land_on is not None]
    demand = {
        "land_ae": len(plan.accounts),
        "expand_ae": sum(1 for a in customers if _handoff(plan, a) is not None),
        "csm": sum(1 for a in customers if a.churn_on is None),
    }
    books = {
        role: people[: max(MIN_STAFF[role], min(len(people), int(demand[role] / BOOK_SIZE[role] + 0.5)))]
        for role, people in BOOKS.items()
    }
    staffed = {email for people in books.values() for email, _ in people}
    n_days = plan.days
    started = {
        # The new CSM joins part-way through the window and takes over part of the book.
        NEW_CSM: plan.window_start + dt.timedelta(days=int(n_days * 0.45)),
    }
    plan.people = []
    for p in EXTRA_PEOPLE:
        if p.email not in staffed:
            continue
        on = started.get(p.email)
        if on is None and p.started_days_ago:
            on = plan.as_of - dt.timedelta(days=min(p.started_days_ago, n_days // 3))
        plan.people.append(PersonPlan(p.email, p.name, p.role, p.team, on))
    return books


class _Dealer:
    """Deals accounts out in proportion to weights (smooth weighted round-robin over each
    account's size, its ARR), in date order: at any time each person's share of the ARR
    dealt so far is what their weight says, for any company size and with no luck of the
    draw, so a year's new logos (and their pay) are balanced too. Someone who has not
    started yet is left out of the deals before their start."""

    def __init__(self, people: tuple[tuple[str, float], ...], started: dict[str, dt.date]) -> None:
        self.weights = dict(people)
        self.started = started
        self.credit = dict.fromkeys(self.weights, 0.0)
        self.joined: set[str] = set()

    def deal(self, on: dt.date, size: float) -> str:
        eligible = [p for p in self.weights if self.started.get(p) is None or self.started[p] <= on]
        for p in eligible:
            if p not in self.joined:
                # A new joiner starts level with the front of the queue, not behind everyone's
                # credit from deals dealt before they came.
                self.joined.add(p)
                self.credit[p] = max((self.credit[q] for q in self.joined), default=0.0)
        for p in eligible:
            self.credit[p] += self.weights[p] * size
        pick = max(eligible, key=lambda p: self.credit[p])  # ties: the first listed
        self.credit[pick] -= sum(self.weights[p] for p in eligible) * size
        return pick


def _plan_ownership(plan: CompanyPlan, rng: random.Random, books: dict[str, tuple[tuple[str, float], ...]]) -> None:
    """Land AE, expand AE (a year after land), CSM; a territory split and a CSM rebalance."""
    started = {p.email: p.started_on for p in plan.people if p.started_on}
    land_aes = [email for email, _ in books["land_ae"]]
    csms = [email for email, _ in books["csm"]]
    new_ae_on = started.get(NEW_AE) if NEW_AE in land_aes else None
    new_csm_on = started.get(NEW_CSM) if NEW_CSM in csms else None
    first_start = {c.account: c.start_on for c in reversed(plan.contracts)}
    last = {a.external_id: a.churn_on - dt.timedelta(days=1) if a.churn_on else None for a in plan.accounts}
    # Land AE: from working the deal until today (or churn); a prospect's since the first call.
    begins = {
        a.external_id: (
            plan.as_of - dt.timedelta(days=rng.randint(10, 120))
            if a.land_on is None
            else a.land_on - dt.timedelta(days=rng.randint(14, 90))
        )
        for a in plan.accounts
    }
    # Dealt per segment, so every land AE gets their share of the big deals too.
    dealers = {segment: _Dealer(books["land_ae"], started) for segment in ARR_RANGE}
    for a in sorted(plan.accounts, key=lambda a: (begins[a.external_id], a.idx)):
        ext, begin, end = a.external_id, begins[a.external_id], last[a.external_id]
        owner = dealers[a.segment].deal(begin, max(a.arr, ARR_RANGE[a.segment][0]))
        # Territories are re-cut when the new AE starts: some of everyone's young customers
        # (landed in the year before) move over; deals still open stay with whoever works them.
        if (
            new_ae_on is not None
            and a.land_on is not None
            and owner != NEW_AE
            and a.land_on < new_ae_on <= min(add_months(a.land_on, 12), plan.as_of)
            and (end is None or new_ae_on < end)
            and rng.random() < TERRITORY_SPLIT
        ):
            _periods(plan, ext, "land_ae", [(owner, begin), (NEW_AE, new_ae_on)], end)
        else:
            _periods(plan, ext, "land_ae", [(owner, begin)], end)
    # Expand AE / AM once an enterprise or mid-market account is a year old.
    dealers = {segment: _Dealer(books["expand_ae"], started) for segment in EXPAND_SEGMENTS}
    handoffs = [(day, a.idx, a) for a in plan.accounts if (day := _handoff(plan, a)) is not None]
    for day, _, a in sorted(handoffs):
        owner = dealers[a.segment].deal(day, a.arr)
        _periods(plan, a.external_id, "expand_ae", [(owner, day)], last[a.external_id])
    # CSM from the first contract's start; a rebalance when the new CSM joins.
    dealer = _Dealer(books["csm"], started)
    customers = [(first_start[a.external_id], a.idx, a) for a in plan.accounts if a.land_on is not None]
    for csm_on, _, a in sorted(customers):
        ext, end = a.external_id, last[a.external_id]
        csm = dealer.deal(csm_on, 1.0)  # CSMs' books are balanced on accounts, not ARR
        if (
            new_csm_on is not None
            and csm != NEW_CSM
            and csm_on < new_csm_on < plan.as_of
            and (end is None or new_csm_on < end)
            and rng.random() < CSM_REBALANCE
        ):
            _periods(plan, ext, "csm", [(csm, csm_on), (NEW_CSM, new_csm_on)], end)
        else:
            _periods(plan, ext, "csm", [(csm, csm_on)], end)
    plan.ownerships.sort(key=lambda o: (o.account, o.role, o.start_on))


def _periods(
    plan: CompanyPlan, account: str, role: str, changes: list[tuple[str, dt.date]], last: dt.date | None
) -> None:
    """Consecutive, non-overlapping periods: each ends the day before the next starts."""
    for i, (person, begin) in enumerate(changes):
        end = changes[i + 1][1] - dt.timedelta(days=1) if i + 1 < len(changes) else last
        plan.ownerships.append(OwnershipPlan(account, person, role, begin, end))


def _plan_usage(plan: CompanyPlan, rng: random.Random) -> None:
    """Which meters each customer uses from when, workloads/regions added, release adopters."""
    n_days = plan.days
    release_days = [int(n_days * r.at_fraction) for r in RELEASES]
    vector_ga = release_days[1]
    adopters: list[list[str]] = [[] for _ in RELEASES]
    for a in plan.accounts:
        if a.land_on is None:
            continue
        used = [m for m in METERS if rng.random() < m.adoption]
        if not used:
            used = [METERS[0]]
        weights = [m.weight * rng.uniform(0.4, 1.6) for m in used]
        total = sum(weights)
        for order, (meter, w) in enumerate(zip(used, weights, strict=True)):
            if order == 0:
                start, mid, width = a.first_use, 0.0, 1.0
            else:
                start = a.first_use + int(rng.uniform(0, 1) ** 2 * 300)
                mid = rng.uniform(15, 60)
                width = mid / 4
            if meter.key == "vector-queries" and start < vector_ga and rng.random() < 0.6:
                start = vector_ga + rng.randint(0, 90)  # most adopt once it is GA
            share = a.target * w / total / 365
            duty = 1.0
            if order and meter.weekday_driven and a.segment != "enterprise":
                if meter.key == "compute-minutes":  # scheduled jobs, not every day
                    duty = rng.uniform(0.3, 0.7)
                elif a.segment == "smb":
                    duty = rng.uniform(0.35, 0.65)
            a.meters.append(MeterUse(meter.key, start, share, mid, width, duty))
        # New workloads and regions over time (expansion SPIFF triggers).
        adds = 0
        if a.archetype == "expand" and a.expand_at is not None:
            a.streams.append(Stream(rng.choice(WORKLOADS[3:]), a.home_region, a.expand_at))
            adds = 1
        extra = {"expand": 0.6, "healthy": 0.35, "late_start": 0.2}.get(a.archetype, 0.08)
        while rng.random() < extra and adds < 3:
            adds += 1
            region = a.home_region
            if rng.random() < 0.45:
                region = rng.choice([r for r in ALL_CLOUD_REGIONS if r != a.home_region])
            begin = a.first_use + rng.randint(30, 400)
            workload = rng.choice([w for w in WORKLOADS if w != a.home_workload])
            a.streams.append(Stream(workload, region, begin))
            extra *= 0.6
        a.streams.sort(key=lambda s: s.start)
    for r, (release, day) in enumerate(zip(RELEASES, release_days, strict=True)):
        for a in plan.accounts:
            use = next((m for m in a.meters if m.key == release.meter), None)
            if use is None or use.start > day - 14 or (a.zero_at is not None and a.zero_at < day + 30):
                continue
            if rng.random() < release.adopter_share:
                use.lifts.append((day + rng.randint(0, 30), rng.uniform(*release.lift), release.flag))
                adopters[r].append(a.external_id)
    plan.releases = [
        ReleasePlan(rel.name, plan.day(day), rel.meter, rel.features, rel.notes, tuple(adopters[i]))
        for i, (rel, day) in enumerate(zip(RELEASES, release_days, strict=True))
    ]


# Prospects with a contract about to start: the deal desk's queue (no estimate from it yet).
PLANNED_SHARE = 0.35

# Each archetype's conversations: (kind, text, tags). An account never gets the same one
# twice; the placeholders make each note its own (see _note_details).
ACTIVITY_NOTES = {
    "healthy": [
        ("call", "Usage tracking the plan; {workload} traffic steady in {home_region}. {contact} asked about annual prepay.", ("on-track",)),
        ("qbr", "QBR with {contact}: burn on pace for the {commit} commit, latency well inside the SLA. Next: roll {meter} out to a second team.", ("qbr",)),
        ("meeting", "Architecture review of {workload} with {contact}; they want regional failover beyond {home_region} next year.", ("roadmap",)),
        ("email", "Sent {contact} the usage summary for {account}: {meter} carries most of the spend and the run rate matches their budget.", ("on-track",)),
        ("call", "{contact} wants {other_meter} for a new {industry} use case; scoping a proof of value.", ("expansion-idea",)),
        ("meeting", "Renewal planning with {contact} for {renewal}: they expect to recommit at or above {commit}.", ("renewal",)),
    ],
    "expand": [
        ("call", "New workload going live at {account}: {new_workload}. Expect usage to jump next month.", ("new-workload",)),
        ("meeting", "Consumption above the {commit} commit; opened a recommit at a higher floor with {contact}.", ("recommit", "expansion")),
        ("qbr", "QBR: {new_workload} in production in {new_region}; {contact} is discussing a multi-year deal.", ("qbr", "expansion")),
        ("email", "Shared volume pricing for {meter} with {contact} ahead of the {new_workload} rollout.", ("expansion", "pricing")),
        ("call", "{contact} is moving a second team onto {meter} and asked for a sandbox in {new_region}.", ("new-workload",)),
        ("meeting", "Capacity planning with {contact}: {workload} and {new_workload} together will outgrow the {commit} commit before {renewal}.", ("expansion",)),
    ],
    "stall": [
        ("call", "Still in pilot: SSO integration blocking the {workload} rollout at {account}.", ("stalled-adoption",)),
        ("email", "Sent {contact} the onboarding playbook again; no response yet.", ("stalled-adoption",)),
        ("meeting", "Enablement workshop booked with {contact}; they under-estimated the data migration for {workload}.", ("adoption-program",)),
        ("call", "{contact} says {workload} waits on an internal security review; burn well under plan on the {commit} commit.", ("stalled-adoption",)),
        ("meeting", "Adoption plan agreed with {contact}: weekly office hours until {meter} is in production.", ("adoption-program",)),
        ("note", "No named adoption owner at {account} since kick-off; asked {contact} to nominate one.", ("stalled-adoption",)),
    ],
    "decline": [
        ("call", "Budget review at {account}: moving part of {workload} in-house to cut cost.", ("budget", "at-risk")),
        ("meeting", "Usage dropped after their reorg; {contact} moved teams and the new owner is not engaged yet.", ("champion-left", "at-risk")),
        ("email", "Shared a cost-optimization plan for {meter} (batch API, caching) with {contact} to win back volume.", ("at-risk",)),
        ("call", "{contact} confirmed a spending freeze until next quarter; {workload} traffic cut back in {home_region}.", ("budget", "at-risk")),
        ("meeting", "Exec sponsor call: {contact} wants a cheaper tier before {renewal} or they scale back further.", ("at-risk", "pricing")),
        ("note", "Champion left {account}; mapping new stakeholders around {workload} with the land AE.", ("champion-left", "at-risk")),
    ],
    "churn": [
        ("call", "Evaluating a competitor on price; {workload} usage winding down.", ("competitor", "churn-risk")),
        ("meeting", "Renewal call with {contact}: they will not renew; migration off by {renewal}.", ("churn-risk",)),
        ("note", "Exit interview with {contact}: pricing predictability was the main reason.", ("churned", "pricing")),
        ("email", "Sent {contact} a fixed-price option for {meter}; no reply.", ("churn-risk", "pricing")),
        ("call", "{contact} is moving {workload} to their cloud provider's native service.", ("competitor", "churn-risk")),
        ("meeting", "Save attempt at {account}: offered credits and a lower floor than {commit}; {contact} declined.", ("churn-risk",)),
    ],
    "late_start": [
        ("call", "No production traffic yet at {account}; the security review took longer than planned.", ("no-first-usage",)),
        ("email", "Kick-off with {contact} rescheduled; {workload} is targeted for next month.", ("no-first-usage",)),
        ("meeting", "First production traffic this week on {meter}; ramp plan agreed with {contact}.", ("first-usage",)),
        ("call", "{contact} is still waiting on procurement to approve the {region} data residency terms.", ("no-first-usage",)),
        ("meeting", "Technical onboarding for {workload}: API keys issued, first load test in {home_region} scheduled.", ("onboarding",)),
        ("email", "Reminded {contact} that the {commit} commit started on {start}; offered an onboarding engineer.", ("no-first-usage",)),
    ],
    "prospect": [
        ("call", "Discovery call with {contact}: usage estimate and pricing model options.", ("discovery",)),
        ("meeting", "Technical evaluation; proof of concept scoped for {workload}.", ("poc",)),
        ("email", "Sent {contact} a pricing proposal for {workload}: annual commit or prepaid credits.", ("proposal",)),
        ("meeting", "Security questionnaire and {region} data residency review with {contact}'s team.", ("security-review",)),
    ],
}  # fmt: skip
PLANNED_NOTE = (
    "meeting",
    "Commercials agreed with {contact}: {commit} {model} from {start}; the order form is out for signature.",
    ("proposal", "commit"),
)
RELEASE_NOTES = (
    "Turned on {release}; {meter} volume up since. Wants a pricing review before scaling.",
    "{contact} rolled {release} out to {workload}; {meter} usage is climbing. Asked about volume tiers.",
    "Enabled {release} in {home_region}; good early results, but they want pricing settled before moving more workloads.",
)
CONTACT_NAMES = (
    "Dana", "Luis", "Mei", "Omar", "Sofia", "Kwame", "Ingrid", "Raj", "Chloe", "Mateo", "Aiko", "Ben",
    "Fatima", "Jonas", "Lucia", "Arjun", "Noor", "Pablo", "Yuki", "Grace",
)  # fmt: skip
CONTACT_TITLES = (
    "VP Engineering", "Head of Data", "CTO", "platform lead", "ML lead", "Director of Infrastructure",
    "Head of Product", "data engineering manager",
)  # fmt: skip
METER_PROSE = {
    "api-calls": "the REST API",
    "tokens-1k": "LLM inference",
    "storage-gb": "object storage",
    "compute-minutes": "serverless jobs",
    "vector-queries": "vector search",
}
MODEL_PROSE = {
    "commit": "annual commit",
    "hybrid": "hybrid plan",
    "credits": "prepaid credits",
    "minimum": "minimum commit",
}


def _plan_planned_contracts(plan: CompanyPlan, rng: random.Random) -> None:
    """A few prospects about to sign: a contract signed and starting after as_of, with the
    AE's estimate and none yet from the deal desk (its estimate page stores one)."""
    prospects = [a for a in plan.accounts if a.land_on is None]
    if not prospects:
        return
    chosen = sorted(rng.sample(prospects, max(1, int(len(prospects) * PLANNED_SHARE + 0.5))), key=lambda a: a.idx)
    for a in chosen:
        lo, hi = ARR_RANGE[a.segment]
        a.arr = int(_money(math.exp(rng.uniform(math.log(lo), math.log(hi))), ARR_ROUND[a.segment]))
        a.target = a.arr * rng.uniform(0.7, 1.0)
        signed = plan.as_of + dt.timedelta(days=rng.randint(3, 30))
        begin = signed + dt.timedelta(days=rng.randint(7, 30))
        years = _term_years(rng, a.segment)
        end = add_months(begin, 12 * years) - dt.timedelta(days=1)
        model = _pick(rng, PRICING_MODELS)
        contract = _contract(plan, rng, a, 1, model, signed, begin, end, float(a.arr), None, years)
        plan.contracts.append(replace(contract, deal_desk_estimate=None))


def _contract_on(contracts: list[ContractPlan], day: dt.date) -> ContractPlan | None:
    """The contract in force on ``day``, else the next to start, else the last that ended."""
    if not contracts:
        return None
    current = [c for c in contracts if c.start_on <= day <= c.end_on]
    later = [c for c in contracts if c.start_on > day]
    return current[-1] if current else later[0] if later else contracts[-1]


def _money_prose(amount: Decimal) -> str:
    value = float(amount)
    return f"${value / 1e6:.2f}M" if value >= 1_000_000 else f"${value / 1000:,.0f}K"


def _note_details(plan: CompanyPlan, a: AccountSpec, contracts: list[ContractPlan], rng: random.Random) -> dict:
    """What an account's notes mention: its people, workloads, meters, commit and renewal."""
    contact = f"{rng.choice(CONTACT_NAMES)} ({rng.choice(CONTACT_TITLES)})"
    new = a.streams[0] if a.streams else None
    used = [m.key for m in a.meters]
    other = next((m.key for m in METERS if m.key not in used), used[-1] if used else METERS[1].key)
    return {
        "account": a.name,
        "contact": contact,
        "industry": a.industry.lower(),
        "region": a.region,
        "home_region": a.home_region or CLOUD_REGIONS[a.region][0],
        "workload": a.home_workload or rng.choice(WORKLOADS[:4]),
        "new_workload": new.workload if new else "a second workload",
        "new_region": new.region if new else a.home_region,
        "meter": METER_PROSE[used[0]] if used else METER_PROSE[METERS[0].key],
        "other_meter": METER_PROSE[other],
        "contracts": contracts,
    }


def _format_note(text: str, details: dict, day: dt.date) -> str:
    contract = _contract_on(details["contracts"], day)
    extra = {
        "commit": _money_prose(contract.committed_arr) if contract else "planned",
        "renewal": f"{contract.end_on:%B %Y}" if contract else "the renewal",
        "start": f"{contract.start_on:%B} {contract.start_on.day}" if contract else "the start date",
        "model": MODEL_PROSE.get(contract.pricing_model, contract.pricing_model) if contract else "commit",
    }
    return text.format(**details, **extra)


def _plan_activities(plan: CompanyPlan, rng: random.Random) -> None:
    per_segment = {"enterprise": (1, 4), "mid-market": (0, 2), "smb": (0, 1)}
    owners: dict[str, list[OwnershipPlan]] = {}
    for o in plan.ownerships:
        owners.setdefault(o.account, []).append(o)
    contracts: dict[str, list[ContractPlan]] = {}
    for c in plan.contracts:
        contracts.setdefault(c.account, []).append(c)
    last_day = plan.as_of - dt.timedelta(days=1)
    for a in plan.accounts:
        details = _note_details(plan, a, sorted(contracts.get(a.external_id, []), key=lambda c: c.start_on), rng)
        templates = ACTIVITY_NOTES[a.archetype]
        lo, hi = per_segment[a.segment]
        count = rng.randint(lo, hi)
        if a.archetype in ("stall", "decline", "churn", "expand"):
            count += 1  # the accounts the monthly review talks about
        chosen = rng.sample(templates, min(count, len(templates)))
        begin = max(plan.window_start, min(o.start_on for o in owners[a.external_id]))
        end = min(last_day, a.churn_on - dt.timedelta(days=1)) if a.churn_on else last_day
        if end < begin:
            continue
        if a.land_on is None and contracts.get(a.external_id):
            # A deal about to sign: the conversation that got it there, in the last fortnight.
            day = max(begin, end - dt.timedelta(days=rng.randint(0, 14)))
            person = _owner_on(owners[a.external_id], "land_ae", day)
            if person is not None:
                notes = _format_note(PLANNED_NOTE[1], details, day)
                plan.activities.append(
                    ActivityPlan(a.external_id, person, day, PLANNED_NOTE[0], notes, PLANNED_NOTE[2])
                )
        for kind, text, tags in chosen:
            day = begin + dt.timedelta(days=rng.randint(0, (end - begin).days))
            # Timed to the story: expansion notes after it happens, decline notes after the drop.
            if a.archetype == "expand" and a.expand_at is not None and plan.index(day) < a.expand_at <= plan.days - 1:
                day = plan.day(rng.randint(a.expand_at, plan.days - 1))
            if a.archetype == "decline" and a.decline_at is not None and plan.index(day) < a.decline_at < plan.days:
                day = plan.day(rng.randint(a.decline_at, plan.days - 1))
            day = min(max(day, begin), end)
            role = "csm" if kind in ("qbr", "email") else rng.choice(("land_ae", "expand_ae", "csm"))
            person = _owner_on(owners[a.external_id], role, day) or _owner_on(owners[a.external_id], None, day)
            if person is None:
                continue
            plan.activities.append(
                ActivityPlan(a.external_id, person, day, kind, _format_note(text, details, day), tags)
            )
        # Release adoption conversations: evidence for the review's roadmap decisions.
        for use in a.meters:
            for start, _, flag in use.lifts:
                release = next(r for r in RELEASES if r.flag == flag)
                if rng.random() >= 0.35:
                    continue
                day = min(plan.day(start + rng.randint(0, 20)), end)
                person = _owner_on(owners[a.external_id], "csm", day) or _owner_on(owners[a.external_id], None, day)
                if person is not None:
                    text = rng.choice(RELEASE_NOTES).format(
                        **{**details, "meter": METER_PROSE[use.key]}, release=release.name
                    )
                    plan.activities.append(
                        ActivityPlan(a.external_id, person, day, "call", text, ("release-adoption", flag))
                    )
    plan.activities.sort(key=lambda x: (x.occurred_on, x.account, x.person, x.kind))


def _owner_on(ownerships: list[OwnershipPlan], role: str | None, day: dt.date) -> str | None:
    for o in ownerships:
        if (role is None or o.role == role) and o.start_on <= day and (o.end_on is None or day <= o.end_on):
            return o.person
    return None


# --- Usage events ------------------------------------------------------------------------

CSV_HEADER = b"id,account,meter,time,quantity,workload,region,feature\n"


def account_level(plan: CompanyPlan, a: AccountSpec) -> list[float]:
    """The account's usage level per day of the window (1.0 = its first-phase target)."""
    n_days = plan.days
    levels = [0.0] * n_days
    for t in range(max(0, a.first_use), n_days):
        if a.zero_at is not None and t >= a.zero_at:
            break
        s = t - a.first_use
        level = _sigmoid((s - a.ramp_mid) / a.ramp_width)
        if a.drift:  # organic growth once ramped, counted inside the window only
            level *= (1 + a.drift) ** (max(0.0, t - max(0.0, a.first_use + a.ramp_mid)) / 30.4)
        if a.expand_at is not None:
            level += a.expand_amp * _sigmoid((t - a.expand_at - 30) / 12)
        if a.decline_at is not None:
            level *= 1 - a.decline_depth * _sigmoid((t - a.decline_at - 15) / 6)
        if a.zero_at is not None:
            level *= 1 - _sigmoid((t - (a.zero_at - 35)) / 8)
        if a.sudden_drop_at is not None and t >= a.sudden_drop_at:
            level *= 0.3
        levels[t] = level
    return levels


def account_events(plan: CompanyPlan, a: AccountSpec) -> Iterator[str]:
    """CSV lines for one account (its own random stream, so accounts are independent)."""
    if not a.meters:
        return
    rng = random.Random(f"{plan.seed}:usage:{a.external_id}")  # noqa: S311 - demo data
    gauss, rand = rng.gauss, rng.random
    levels = account_level(plan, a)
    n_days = plan.days
    start_weekday = plan.window_start.weekday()
    dates = [plan.day(t).isoformat() for t in range(n_days)]
    ext = a.external_id
    home = f"{a.home_workload},{a.home_region}"
    streams = a.streams
    adoption_days = {s.start for s in streams}
    half_var = a.sigma * a.sigma / 2
    for mi, use in enumerate(a.meters):
        meter = METER_BY_KEY[use.key]
        price = effective_price(meter, use.daily_revenue)
        if meter.weekday_driven:
            mean_week = (5 + 2 * a.weekend) / 7
            week = [1 / mean_week] * 5 + [a.weekend / mean_week] * 2
            sigma = a.sigma
        else:
            week = [1.0] * 7
            sigma = a.sigma / 5
        duty = use.duty
        rate = use.daily_revenue / price / duty
        fmt = f"{{:.{meter.decimals}f}}" if meter.decimals else None
        minimum = 0.5 * 10**-meter.decimals
        hour = rng.randrange(24)
        prefix = f"demo-{ext}-{mi}-"
        tail = f",{ext},{use.key},"
        for t in range(max(0, use.start), n_days):
            level = levels[t]
            if level <= 0.0:
                if a.zero_at is not None and t >= a.zero_at:
                    break
                continue
            if duty < 1.0 and rand() >= duty:
                continue
            if use.ramp_mid:
                level *= _sigmoid((t - use.start - use.ramp_mid) / use.ramp_width)
            feature = ""
            for begin, lift, flag in use.lifts:
                if t >= begin:
                    level *= 1 + lift * _sigmoid((t - begin - 10) / 3)
                    feature = flag
            noise = math.exp(gauss(0.0, sigma) - half_var)
            u = rand()
            if u < 0.004:
                noise *= 0.15  # an outage or a paused pipeline
            elif u > 0.997:
                noise *= 2.5  # a backfill
            qty = rate * level * week[(start_weekday + t) % 7] * noise
            if qty < minimum:
                continue
            time = f"{dates[t]}T{hour:02d}:{(t * 7 + mi * 13) % 60:02d}:00Z"
            active = [s for s in streams if s.start <= t] if streams else None
            if active and (t in adoption_days or rand() < 0.08):
                stream = active[-1] if t in adoption_days else rng.choice(active)
                part = qty * rng.uniform(0.15, 0.45)
                qty -= part
                if part >= minimum:
                    text = fmt.format(part) if fmt else str(int(part + 0.5))
                    yield f"{prefix}{t}b{tail}{time},{text},{stream.workload},{stream.region},{feature}\n"
            text = fmt.format(qty) if fmt else str(int(qty + 0.5))
            yield f"{prefix}{t}{tail}{time},{text},{home},{feature}\n"


def usage_csv_chunks(plan: CompanyPlan) -> Iterator[bytes]:
    """The whole company's usage as CSV bytes (header first), one chunk per account."""
    yield CSV_HEADER
    for a in plan.accounts:
        lines = "".join(account_events(plan, a))
        if lines:
            yield lines.encode()


class ChunkStream(io.RawIOBase):
    """A read-only binary stream over an iterator of byte chunks (bounded memory)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


# --- Loading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    as_of: dt.date
    people: int
    accounts: int
    contracts: int
    ownerships: int
    activities: int
    events: int
    rollups: int


def company_exists() -> bool:
    from accounts.models import Account

    return Account.objects.filter(external_id__startswith=DEMO_PREFIX).exists()


def seed_company(
    *, seed: int = 42, accounts: int = 400, months: int = 18, as_of: dt.date | None = None
) -> LoadResult | None:
    """Load the demo company unless it is already there (then: None, nothing changed)."""
    from django.utils import timezone

    if company_exists():
        return None
    as_of = as_of or timezone.now().astimezone(dt.UTC).date()
    return load_company(plan_company(seed=seed, accounts=accounts, months=months, as_of=as_of))


def load_company(plan: CompanyPlan) -> LoadResult:
    """Write a plan in one transaction: all of it or nothing."""
    from django.db import connection, transaction

    from usage.ingestion.csv_import import import_usage_stream
    from usage.ingestion.rollups import fold_all_deltas, fold_deltas, pending_delta_count

    with transaction.atomic():
        with connection.cursor() as cursor:
            # The import sorts and hashes a million rows; the default 4 MB spills to disk.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # JIT compiling the import's big expressions costs more than it saves here.
            cursor.execute("SET LOCAL jit = off")
        people = _load_people(plan)
        account_ids = _load_accounts(plan)
        _load_ownerships(plan, account_ids, people)
        contracts = _load_contracts(plan, account_ids)
        _load_meters_and_releases(plan, account_ids)
        _load_activities(plan, account_ids, people)
        stream = io.BufferedReader(ChunkStream(usage_csv_chunks(plan)), buffer_size=1 << 20)
        imported = import_usage_stream(stream, received_at=_midnight(plan.as_of))
        # One fold for all of it: in 200k-row batches every batch re-prices nearly every
        # account × meter × month again. Then the usual loop for anything left.
        fold_deltas(limit=pending_delta_count() + 1, wait=True)
        fold_all_deltas()
        from usage.models import DailyRollup

        rollups = DailyRollup.objects.filter(account_id__in=account_ids.values()).count()
    return LoadResult(
        as_of=plan.as_of,
        people=len(people),
        accounts=len(account_ids),
        contracts=contracts,
        ownerships=len(plan.ownerships),
        activities=len(plan.activities),
        events=imported.accepted,
        rollups=rollups,
    )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _load_people(plan: CompanyPlan) -> dict[str, int]:
    from django.contrib.auth.hashers import make_password

    from demo.data import DEMO_PASSWORD, DEMO_PEOPLE
    from demo.people import seed_people
    from revops.models import Team, User

    if User.objects.filter(email__in=[p.email for p in DEMO_PEOPLE]).count() < len(DEMO_PEOPLE):
        seed_people()  # the documented six own accounts too (seed_demo has already run it)
    teams = {t.name: t for t in Team.objects.filter(name__in={p.team for p in plan.people})}
    password = make_password(DEMO_PASSWORD)  # hashed once: a published demo login
    for p in plan.people:
        team = teams.get(p.team) or Team.objects.get_or_create(name=p.team)[0]
        teams[p.team] = team
        User.objects.update_or_create(
            email=p.email,
            defaults={"name": p.name, "role": p.role, "team": team, "started_on": p.started_on, "password": password},
        )
    return dict(User.objects.values_list("email", "id"))


def _load_accounts(plan: CompanyPlan) -> dict[str, int]:
    from accounts.models import Account

    ids: dict[str, int] = {}
    # Parents first, so divisions can point at them.
    for level in (False, True):
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
            if (a.parent is not None) == level
        ]
        for row in Account.objects.bulk_create(rows, batch_size=1000):
            ids[row.external_id] = row.id
    return ids


def _load_ownerships(plan: CompanyPlan, account_ids: dict[str, int], people: dict[str, int]) -> None:
    from accounts.models import Ownership

    Ownership.objects.bulk_create(
        [
            Ownership(
                account_id=account_ids[o.account],
                person_id=people[o.person],
                role=o.role,
                start_on=o.start_on,
                end_on=o.end_on,
            )
            for o in plan.ownerships
        ],
        batch_size=1000,
    )


def _load_contracts(plan: CompanyPlan, account_ids: dict[str, int]) -> int:
    from accounts.models import Contract

    ids: dict[str, int] = {}
    pending = list(plan.contracts)
    while pending:  # a generation at a time: amendments after what they amend
        ready = [c for c in pending if c.amends is None or c.amends in ids]
        pending = [c for c in pending if not (c.amends is None or c.amends in ids)]
        created = Contract.objects.bulk_create(
            [
                Contract(
                    external_id=c.external_id,
                    account_id=account_ids[c.account],
                    pricing_model=c.pricing_model,
                    signed_on=c.signed_on,
                    start_on=c.start_on,
                    end_on=c.end_on,
                    committed_arr=c.committed_arr,
                    tcv=c.tcv,
                    included_units=c.included_units,
                    included_meter=c.included_meter,
                    base_fee=c.base_fee,
                    credits=c.credits,
                    deal_desk_estimate=c.deal_desk_estimate,
                    ae_estimate=c.ae_estimate,
                    ramp_days=c.ramp_days,
                    amends_id=ids[c.amends] if c.amends else None,
                )
                for c in ready
            ],
            batch_size=1000,
        )
        ids.update({c.external_id: c.id for c in created})
    return len(ids)


def _load_meters_and_releases(plan: CompanyPlan, account_ids: dict[str, int]) -> None:
    from usage.models import Meter, MeterTier, ProductRelease

    meters: dict[str, Meter] = {}
    for spec in METERS:
        meter, created = Meter.objects.update_or_create(
            key=spec.key,
            defaults={"name": spec.name, "unit": spec.unit, "product_line": spec.product_line, "feature": spec.feature},
        )
        meters[spec.key] = meter
        if created or not meter.tiers.exists():
            MeterTier.objects.bulk_create(
                [
                    MeterTier(meter=meter, up_to=Decimal(up) if up else None, unit_price=Decimal(price))
                    for up, price in spec.tiers
                ]
            )
    for r in plan.releases:
        release, _ = ProductRelease.objects.update_or_create(
            name=r.name, defaults={"released_on": r.released_on, "features": list(r.features), "notes": r.notes}
        )
        release.meters.set([meters[r.meter]])


def _load_activities(plan: CompanyPlan, account_ids: dict[str, int], people: dict[str, int]) -> None:
    from accounts.models import Activity

    Activity.objects.bulk_create(
        [
            Activity(
                account_id=account_ids[x.account],
                person_id=people[x.person],
                occurred_on=x.occurred_on,
                kind=x.kind,
                notes=x.notes,
                tags=list(x.tags),
            )
            for x in plan.activities
        ],
        batch_size=1000,
    )
