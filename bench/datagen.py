"""Deterministic synthetic usage: 5,000 accounts, 6 meters, skewed like real customers.

``Population(seed)`` decides everything (a ``random.Random`` per purpose, no wall clock
except the ``as_of`` anchor the caller passes), so the same seed and anchor give the same
bytes. Accounts have log-normal sizes (a few big customers, a long tail), each uses a
subset of the meters, has a home workload and region (extra CSV columns, which the import
turns into event properties), and a small share of events name an account the database
does not know (they are quarantined).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass, field
from decimal import Decimal

ACCOUNT_PREFIX = "BENCH-"
UNKNOWN_PREFIX = "BENCH-UNKNOWN-"
CSV_HEADER = "id,account,meter,time,quantity,workload,region\n"
WORKLOADS = ("chat", "search", "etl", "agents", "analytics", "batch", "vision", "rag")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "sa-east-1")
# (key, name, unit, tiers as (up_to or None, unit price), quantity decimals, log-normal mu, sigma,
#  share of accounts using it, weight within an account)
METERS = (
    ("api-calls", "API calls", "request", ((None, "0.0005"),), 0, 4.0, 1.2, 0.9, 5),
    (
        "tokens-1k",
        "LLM tokens (1K)",
        "1K tokens",
        (("1000000", "0.004"), ("10000000", "0.003"), (None, "0.002")),
        3,
        2.0,
        1.5,
        0.65,
        4,
    ),
    ("storage-gb", "Storage", "GB-day", ((None, "0.0008"),), 3, 3.0, 1.0, 0.5, 1),
    ("compute-minutes", "Compute minutes", "minute", ((None, "0.01"),), 2, 1.5, 1.0, 0.4, 2),
    ("vector-queries", "Vector queries", "query", ((None, "0.0002"),), 0, 3.5, 1.3, 0.3, 2),
    ("gpu-seconds", "GPU seconds", "second", (("100000", "0.0012"), (None, "0.0009")), 1, 4.5, 1.1, 0.2, 1),
)
QUANTITIES_PER_METER = 4096


@dataclass
class AccountUse:
    external_id: str
    # (prefix "account,meter,", quantity strings, tail ",workload,region\n") per weighted meter slot
    slots: list[tuple[str, list[str], str]] = field(default_factory=list)


class Population:
    def __init__(self, seed: int = 7, accounts: int = 5000, unknown_accounts: int = 25) -> None:
        self.seed = seed
        rng = random.Random(f"{seed}:population")
        self.quantities: dict[str, list[str]] = {}
        for key, _name, _unit, _tiers, decimals, mu, sigma, _adoption, _weight in METERS:
            qrng = random.Random(f"{seed}:quantity:{key}")
            values = []
            for _ in range(QUANTITIES_PER_METER):
                q = qrng.lognormvariate(mu, sigma)
                values.append(f"{q:.{decimals}f}" if decimals else str(max(1, round(q))))
            self.quantities[key] = values
        self.accounts: list[AccountUse] = []
        self.weights: list[float] = []
        for i in range(accounts):
            ext = f"{ACCOUNT_PREFIX}{i + 1:05d}"
            used = [m for m in METERS if rng.random() < m[7]] or [METERS[0]]
            home = (rng.choice(WORKLOADS), rng.choice(REGIONS))
            tails = [f",{home[0]},{home[1]}\n"] * 8 + [f",{rng.choice(WORKLOADS)},{rng.choice(REGIONS)}\n"]
            use = AccountUse(ext)
            for m in used:
                for _ in range(m[8]):
                    use.slots.append((f"{ext},{m[0]},", self.quantities[m[0]], rng.choice(tails)))
            self.accounts.append(use)
            self.weights.append(rng.lognormvariate(0.0, 1.6))
        for j in range(unknown_accounts):
            ext = f"{UNKNOWN_PREFIX}{j + 1:03d}"
            use = AccountUse(ext, [(f"{ext},api-calls,", self.quantities["api-calls"], ",chat,us-east-1\n")])
            self.accounts.append(use)
            self.weights.append(0.0)
        self.known = accounts
        self.cum_weights = list(itertools.accumulate(self.weights))

    # --- reference data -------------------------------------------------------------------

    def ensure_reference_data(self) -> tuple[int, int]:
        """The accounts and meters (with tiers) the events name; created when missing."""
        from accounts.models import Account
        from usage.models import Meter, MeterTier

        existing = set(
            Account.objects.filter(external_id__startswith=ACCOUNT_PREFIX).values_list("external_id", flat=True)
        )
        segments = ("enterprise", "mid-market", "smb")
        missing = [
            Account(
                external_id=a.external_id,
                name=f"Bench customer {a.external_id[len(ACCOUNT_PREFIX) :]}",
                segment=segments[i % 3],
                region="EMEA" if i % 2 else "North America",
            )
            for i, a in enumerate(self.accounts[: self.known])
            if a.external_id not in existing
        ]
        Account.objects.bulk_create(missing, batch_size=1000)
        for key, name, unit, tiers, *_ in METERS:
            meter, created = Meter.objects.get_or_create(key=key, defaults={"name": name, "unit": unit})
            if created or not meter.tiers.exists():
                MeterTier.objects.bulk_create(
                    MeterTier(meter=meter, up_to=Decimal(up) if up else None, unit_price=Decimal(price))
                    for up, price in tiers
                )
        return len(missing), len(METERS)

    # --- the CSV file ---------------------------------------------------------------------

    def write_csv(
        self,
        path: str,
        *,
        events: int,
        as_of: dt.date,
        days: int = 60,
        duplicate_rate: float = 0.01,
        unknown_rate: float = 0.0002,
        id_prefix: str = "ev",
    ) -> CsvStats:
        """``events`` CSV rows over the ``days`` days before ``as_of``; ~1% repeat an earlier row."""
        rng = random.Random(f"{self.seed}:csv:{events}:{as_of.isoformat()}:{id_prefix}")
        first_day = as_of - dt.timedelta(days=days)
        day_names = [(first_day + dt.timedelta(days=d)).isoformat() + "T" for d in range(days)]
        # Mild growth over the window and quieter weekends.
        day_weights = [
            (0.85 + 0.3 * d / days) * (0.6 if (first_day + dt.timedelta(days=d)).weekday() >= 5 else 1.0)
            for d in range(days)
        ]
        day_cum = list(itertools.accumulate(day_weights))
        tod = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z," for s in range(86400)]
        known_cum = self.cum_weights[: self.known]
        known = self.accounts[: self.known]
        unknown = self.accounts[self.known :]
        stats = CsvStats(path=path, first_day=first_day, last_day=as_of - dt.timedelta(days=1))
        recent: list[str] = []
        recent_cap = 20_000
        mask = (1 << 64) - 1
        rand = rng.random
        choices = rng.choices
        chunk = 100_000
        serial = 0
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(CSV_HEADER)
            remaining = events
            while remaining:
                n = min(chunk, remaining)
                remaining -= n
                picked = choices(known, cum_weights=known_cum, k=n)
                dayed = choices(day_names, cum_weights=day_cum, k=n)
                lines = []
                for account, day in zip(picked, dayed, strict=True):
                    u = rand()
                    if u < duplicate_rate and recent:
                        lines.append(recent[int(rand() * len(recent))])
                        stats.duplicates += 1
                        continue
                    if u > 1.0 - unknown_rate and unknown:
                        account = unknown[int(rand() * len(unknown))]
                        stats.unknown += 1
                    slots = account.slots
                    prefix, quantities, tail = slots[int(rand() * len(slots))]
                    serial += 1
                    line = (
                        f"{id_prefix}_{(serial * 0x9E3779B97F4A7C15) & mask:016x},{prefix}{day}"
                        f"{tod[int(rand() * 86400)]}{quantities[int(rand() * QUANTITIES_PER_METER)]}{tail}"
                    )
                    lines.append(line)
                    if len(recent) < recent_cap:
                        recent.append(line)
                    else:
                        recent[int(rand() * recent_cap)] = line
                out.write("".join(lines))
                stats.rows += n
        import os

        stats.bytes = os.path.getsize(path)
        return stats

    # --- events for the ingest path (rollup bench) and JSON fragments (API bench) ----------

    def events(self, *, count: int, anchor: dt.date, late_share: float, late_days: int, id_prefix: str) -> list:
        """EventIn objects: most on ``anchor`` and the day before, ``late_share`` up to ``late_days`` back."""
        from usage.ingestion.events import DEFAULT_SOURCE, EventIn

        rng = random.Random(f"{self.seed}:events:{id_prefix}")
        known_cum = self.cum_weights[: self.known]
        picked = rng.choices(self.accounts[: self.known], cum_weights=known_cum, k=count)
        midnight = dt.datetime(anchor.year, anchor.month, anchor.day, tzinfo=dt.UTC)
        out = []
        for i, account in enumerate(picked):
            prefix, quantities, tail = account.slots[int(rng.random() * len(account.slots))]
            _ext, meter, _ = prefix.split(",")
            workload, region = tail.strip().lstrip(",").split(",")
            back = rng.randint(2, late_days) if rng.random() < late_share else rng.randint(0, 1)
            occurred = midnight - dt.timedelta(days=back) + dt.timedelta(seconds=rng.randrange(86400))
            out.append(
                EventIn(
                    source=DEFAULT_SOURCE,
                    event_id=f"{id_prefix}-{i}",
                    account_ref=account.external_id,
                    meter_ref=meter,
                    occurred_at=occurred,
                    quantity=Decimal(quantities[int(rng.random() * QUANTITIES_PER_METER)]),
                    properties={"workload": workload, "region": region},
                )
            )
        return out

    def json_fragments(self, *, count: int, now: dt.datetime, late_share: float = 0.05) -> list[str]:
        """JSON object bodies without the id: ``{"id":"…",`` + fragment makes one event."""
        rng = random.Random(f"{self.seed}:json")
        known_cum = self.cum_weights[: self.known]
        picked = rng.choices(self.accounts[: self.known], cum_weights=known_cum, k=count)
        out = []
        for account in picked:
            prefix, quantities, tail = account.slots[int(rng.random() * len(account.slots))]
            ext, meter, _ = prefix.split(",")
            workload, region = tail.strip().lstrip(",").split(",")
            back = rng.uniform(2, 30) * 86400 if rng.random() < late_share else rng.uniform(0, 2 * 86400)
            occurred = (now - dt.timedelta(seconds=back)).strftime("%Y-%m-%dT%H:%M:%SZ")
            quantity = quantities[int(rng.random() * QUANTITIES_PER_METER)]
            out.append(
                f'"account":"{ext}","meter":"{meter}","time":"{occurred}","quantity":{quantity},'
                f'"properties":{{"workload":"{workload}","region":"{region}"}}}}'
            )
        return out


@dataclass
class CsvStats:
    path: str
    first_day: dt.date
    last_day: dt.date
    rows: int = 0
    duplicates: int = 0
    unknown: int = 0
    bytes: int = 0

    @property
    def unique(self) -> int:
        return self.rows - self.duplicates

    @property
    def expected_accepted(self) -> int:
        return self.rows - self.duplicates - self.unknown
