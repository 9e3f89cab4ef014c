"""Compensation (the comp issue): twelve monthly comp runs, a re-run, the statement page.

    python -m bench.comp_run [--reuse] [--people 200] [--accounts 5000] [--months 12]
                             [--as-of 2026-12-01] [--statement-requests 100] [--explain]

Data: ``bench.metrics_data``'s company in ``revops_bench_comp`` (the bench database's
name plus ``_comp``) with 200 people (120 AEs, 60 CSMs, 8 leaders, 5 finance, 5 product,
2 admins; the last 8 AEs and 4 CSMs hired less than 9 months before ``--as-of``) and 12
months of daily rollups (5,000 accounts, ~9M rows) to ``--as-of``, dropped, re-created
and generated (~2 minutes), or kept with ``--reuse`` when it already holds exactly that.

The comp set-up is then written directly, every time (comp tables and ``FirstSeen``
emptied first, so a run always starts from an empty ledger):

- five plans, one ``PlanVersion`` each with the issue's parameters: Land (base 10 %,
  1.5× above quota, 50 % at signature, 50 % at day 90 behind a 25 % burn floor, hard
  clawback at day 365 under 40 %), Expand (10 %, tiers 1.5×/2×/3× above 100/125/150 %),
  SPIFF, CS (NRR curve) and a recoverable 6-month Draw;
- every AE on Land + Expand + SPIFF + Draw, every CSM on CS, quarterly quota periods,
  from the quarter before the first month computed (a recent hire from their start day,
  with the default ramp relief). Quotas come from the generated data: an AE's Land quota
  is their mean quarterly new-logo ARR, the Expand quota their mean quarterly net-new ARR
  as ``comp.engine.expansion_by_beneficiary`` credits it over two full quarters, each ×
  a per-person factor in 0.6–1.4 (seeded), so attainment varies around 100 %;
- a few hundred ``FirstSeen`` rows (meters first used inside the window, from the
  rollups; invented workloads and regions on random accounts) so SPIFFs fire.

Timed, in this process:

1. ``comp.engine.run_comp(period=…)`` for each month of the window in order (the first
   month is the one after the window's first day): seconds, lines added, the time per
   engine phase (the bench wraps the module's phase functions) and the heaviest SQL
   statements (every statement timed, as ``metrics_refresh`` does).
2. The last month again: must add 0 lines.
3. ``GET /comp/statements/<person_id>/<YYYY-MM>/`` for random (person, month) pairs with
   lines (a third with at most 3 lines, a third with 60 or more, when there are such),
   as a finance user (given a TOTP authenticator, which the MFA middleware asks for),
   with ``django.test.Client`` (server time), queries per request counted.

Budgets (the comp issue): a monthly run < 30 s; the statement page p95 < 200 ms with a
constant number of queries (the same count for a 3-line and a 60-line statement). A
missing function or URL is a FAIL row saying what is missing; an exception in the code
under test is printed and reported as FAIL; the exit status stays 0 either way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import random
import sys
import time
import traceback
from collections import Counter, defaultdict
from decimal import Decimal

from bench import common, metrics_data
from bench.metrics_refresh import Missing, Samples, heaviest_statements, pct, require_url, run_part

NAME = "comp_run"
DATABASE_SUFFIX = "_comp"
DEFAULT_AS_OF = dt.date(2026, 12, 1)
RUN_BUDGET_S = 30.0
PAGE_BUDGET_MS = 200.0
FINANCE = "bench-finance-01@example.com"
LEADER = "bench-leader-01@example.com"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - a bench-only authenticator

PLANS = {
    "land": {
        "base_rate": "0.10",
        "accelerators": [{"above_attainment": "1.00", "multiplier": "1.5"}],
        "schedule": [{"at_day": 0, "share": "0.5"}, {"at_day": 90, "share": "0.5", "burn_floor": "0.25"}],
        "recheck": "monthly",
        "clawback": {"at_day": 365, "burn_floor": "0.40", "mode": "hard"},
        "quota_credit": {"basis": "committed_arr"},
    },
    "expand": {
        "rate": "0.10",
        "tiers": [
            {"above_attainment": "1.00", "multiplier": "1.5"},
            {"above_attainment": "1.25", "multiplier": "2"},
            {"above_attainment": "1.50", "multiplier": "3"},
        ],
        "credit_split_months": 12,
    },
    "spiff": {"new_workload": "3000", "new_region": "2000", "new_sku_rate": "0.05", "recommit_rate": "0.01"},
    "cs": {
        "target_bonus": "5000",
        "curve": [{"nrr": "0.90", "payout": "0"}, {"nrr": "1.00", "payout": "1.0"}, {"nrr": "1.20", "payout": "1.5"}],
    },
    "draw": {"monthly_amount": "3000", "months": 6, "recoverable": True},
}
AE_PLANS = ("land", "expand", "spiff", "draw")
CSM_PLANS = ("cs",)
WORKLOADS = ("batch-etl", "rag-search", "fraud-scoring", "recsys", "agents", "doc-ocr", "forecasting", "chat-support")
CLOUD_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1")
# The engine's phases, timed by wrapping the module's functions (compute_targets looks them up at call time).
PHASES = (
    "Run",
    "land_deals",
    "land_targets",
    "land_credit_and_accelerators",
    "expand_targets",
    "spiff_targets",
    "cs_targets",
    "pilot_targets",
    "draw_targets",
    "_differences",
)


# --- Set-up ------------------------------------------------------------------------------


def months_of(args: argparse.Namespace) -> list[dt.date]:
    """The months computed: every whole month of the data window, oldest first."""
    from comp.periods import add_months, month_start

    window_start = metrics_data.add_months(args.as_of, -args.months)
    first = month_start(window_start)
    if first < window_start:
        first = add_months(first, 1)
    last = add_months(month_start(args.as_of), -1)  # the last whole month before as_of
    out = []
    while first <= last:
        out.append(first)
        first = add_months(first, 1)
    return out


def reset_comp() -> list[str]:
    """Empty every comp table and FirstSeen: the append-only triggers refuse DELETE and TRUNCATE
    unless the session says revops.allow_truncate=on, which this bench's own database may."""
    from django.apps import apps
    from django.db import connection, transaction

    tables = sorted({m._meta.db_table for m in apps.get_app_config("comp").get_models() if m._meta.managed})
    tables.append("usage_firstseen")
    with transaction.atomic(), connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        tables = [t for t in tables if t in existing]
        cursor.execute("SET LOCAL revops.allow_truncate = on")
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    return tables


def _factor(rng: random.Random) -> Decimal:
    return Decimal(f"{rng.uniform(0.6, 1.4):.2f}")


def _round_quota(value: Decimal) -> Decimal:
    step = Decimal(1000)
    return max(step, (value / step).quantize(Decimal(1)) * step)


def land_quotas(aes: list, first_month: dt.date, last_month: dt.date, rng: random.Random) -> dict[int, Decimal]:
    """Mean quarterly new-logo ARR credited to each AE (land AE on the signature day) × a factor."""
    from accounts.models import Contract, OwnerRole
    from comp.engine import Owners
    from comp.periods import month_end, quarter_start

    owners = Owners()
    by_person: dict[int, Decimal] = defaultdict(Decimal)
    quarters = set()
    for contract in Contract.objects.filter(
        amends__isnull=True, signed_on__gte=first_month, signed_on__lte=month_end(last_month)
    ):
        person = owners.on(contract.account_id, OwnerRole.LAND_AE, contract.signed_on)
        if person is not None:
            by_person[person] += contract.committed_arr
    day = first_month
    while day <= last_month:
        quarters.add(quarter_start(day))
        day = metrics_data.add_months(day, 1)
    n_quarters = Decimal(max(1, len(quarters) - 1))  # the first and last quarters are partial
    means = sorted(v / n_quarters for v in by_person.values() if v > 0)
    median = means[len(means) // 2] if means else Decimal(100_000)
    return {ae.pk: _round_quota((by_person[ae.pk] / n_quarters or median) * _factor(rng)) for ae in aes}


def expand_quotas(aes: list, last_month: dt.date, rng: random.Random) -> dict[int, Decimal]:
    """Mean net-new ARR per quarter over the two last whole quarters, as the engine credits it."""
    from comp.engine import Run, expansion_by_beneficiary
    from comp.periods import add_months, month_end, quarter_start

    end_quarter = quarter_start(add_months(last_month, 1))
    quarters = [add_months(end_quarter, -6), add_months(end_quarter, -3)]
    run = Run(last_month)
    totals: dict[int, list[Decimal]] = defaultdict(list)
    for start in quarters:
        end = month_end(add_months(start, 2))
        length = (end - start).days + 1
        credit = expansion_by_beneficiary(run, start, end, int(PLANS["expand"]["credit_split_months"]))
        for person, by_account in credit.by_account.items():
            totals[person].append(sum(by_account.values(), Decimal(0)) * 365 / length)
    means = {p: sum(v) / len(quarters) for p, v in totals.items()}
    positive = sorted(v for v in means.values() if v > 0)
    median = positive[len(positive) // 2] if positive else Decimal(50_000)
    return {ae.pk: _round_quota((means.get(ae.pk) if means.get(ae.pk, 0) > 0 else median) * _factor(rng)) for ae in aes}


def first_seen_rows(args: argparse.Namespace, window_start: dt.date, last_day: dt.date) -> list:
    """Meters first used inside the window (from the rollups), invented workloads and regions."""
    from django.db import connection

    from accounts.models import Account
    from usage.models import FirstSeen

    rng = random.Random(f"{args.seed}:firstseen")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.account_id, m.key, min(r.day) FROM usage_dailyrollup r JOIN usage_meter m ON m.id = r.meter_id"
            " GROUP BY r.account_id, m.key HAVING min(r.day) > %s ORDER BY 1, 2",
            [window_start],
        )
        adopted = cursor.fetchall()
    rows = [
        FirstSeen(account_id=a, kind="meter", value=key, first_day=day)
        for a, key, day in rng.sample(adopted, min(len(adopted), args.first_seen // 2))
    ]
    accounts = list(Account.objects.order_by("pk").values_list("pk", flat=True))
    days = (last_day - window_start).days
    for kind, values, count in (
        ("workload", WORKLOADS, args.first_seen * 3 // 10),
        ("region", CLOUD_REGIONS, args.first_seen - args.first_seen // 2 - args.first_seen * 3 // 10),
    ):
        seen = set()
        while len(seen) < count:
            pair = (rng.choice(accounts), rng.choice(values))
            if pair in seen:
                continue
            seen.add(pair)
            first = window_start + dt.timedelta(days=rng.randint(1, days))
            rows.append(FirstSeen(account_id=pair[0], kind=kind, value=pair[1], first_day=first))
    FirstSeen.objects.bulk_create(rows)
    return rows


def set_up_comp(args: argparse.Namespace, months: list[dt.date], summary: common.Summary) -> dict:
    from django.db import transaction

    from comp.models import Assignment, Plan, PlanVersion
    from comp.periods import add_months, month_end, quarter_start
    from revops.models import User

    common.heading("comp set-up: plans, assignments, quotas, FirstSeen")
    started = time.perf_counter()
    emptied = reset_comp()
    common.note(f"emptied {len(emptied)} tables ({', '.join(emptied)})")
    window_start = metrics_data.add_months(args.as_of, -args.months)
    assign_from = quarter_start(add_months(months[0], -1))
    rng = random.Random(f"{args.seed}:quotas")
    people = list(User.objects.filter(email__startswith="bench-").order_by("pk"))
    aes = [u for u in people if u.role == "ae"]
    csms = [u for u in people if u.role == "csm"]
    with transaction.atomic():
        plans = {}
        for kind, parameters in PLANS.items():
            plan = Plan.objects.create(name=f"Bench {kind.capitalize()}", type=kind)
            plans[kind] = plan
            PlanVersion.objects.create(
                plan=plan, version=1, effective_from=dt.date(2020, 1, 1), parameters=parameters, source="bench.comp_run"
            )
        land = land_quotas(aes, months[0], months[-1], rng)
        expand = expand_quotas(aes, months[-1], rng)
        assignments = []
        recent = []
        for person in aes + csms:
            start = max(assign_from, person.started_on or assign_from)
            if person.started_on and person.started_on > metrics_data.add_months(args.as_of, -9):
                recent.append(person)
            for kind in AE_PLANS if person.role == "ae" else CSM_PLANS:
                quota = {"land": land, "expand": expand}.get(kind, {}).get(person.pk, Decimal(0))
                assignments.append(
                    Assignment(person=person, plan=plans[kind], start_on=start, quota=quota, quota_period="quarter")
                )
        Assignment.objects.bulk_create(assignments)
        firsts = first_seen_rows(args, window_start, month_end(months[-1]))
    seconds = time.perf_counter() - started
    land_q = sorted(land.values())
    expand_q = sorted(expand.values())
    common.note(
        f"{len(plans)} plans, {len(assignments)} assignments ({len(aes)} AEs × {len(AE_PLANS)}, "
        f"{len(csms)} CSMs × {len(CSM_PLANS)}), from {assign_from} (recent hires from their start day: "
        f"{', '.join(p.email.split('@')[0] for p in recent)})"
    )
    common.note(
        f"quarterly quotas: land min/median/max ${land_q[0]:,.0f} / ${land_q[len(land_q) // 2]:,.0f} / "
        f"${land_q[-1]:,.0f}; expand ${expand_q[0]:,.0f} / ${expand_q[len(expand_q) // 2]:,.0f} / ${expand_q[-1]:,.0f}"
    )
    common.note(f"{len(firsts)} FirstSeen rows ({dict(Counter(f.kind for f in firsts))}); set-up {seconds:.1f} s")
    summary.info("comp set-up", f"{len(assignments)} assignments, {len(firsts)} FirstSeen, {seconds:.1f} s")
    return {"aes": aes, "csms": csms, "recent": recent}


# --- 1. and 2. The monthly runs -----------------------------------------------------------


class PhaseTimer:
    """Wall time per engine phase: wraps comp.engine's phase functions while installed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def __enter__(self) -> PhaseTimer:
        from comp import engine

        self._saved = {name: getattr(engine, name) for name in PHASES if hasattr(engine, name)}
        for name, fn in self._saved.items():
            setattr(engine, name, self._wrap(name, fn))
        return self

    def _wrap(self, name: str, fn):
        if isinstance(fn, type):  # Run: time its __init__ (the loading) through a subclass
            timer = self

            class Timed(fn):
                def __init__(self, *a, **kw):
                    started = time.perf_counter()
                    try:
                        super().__init__(*a, **kw)
                    finally:
                        timer.seconds[name] += time.perf_counter() - started

            Timed.__name__ = fn.__name__
            return Timed

        @functools.wraps(fn)
        def timed(*a, **kw):
            started = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def __exit__(self, *exc) -> None:
        from comp import engine

        for name, fn in self._saved.items():
            setattr(engine, name, fn)

    def line(self) -> str:
        shown = [(n, s) for n, s in self.seconds.items() if s >= 0.005]
        return ", ".join(f"{n} {s:.2f}" for n, s in sorted(shown, key=lambda kv: -kv[1]))


def one_run(period: dt.date, *, explain: bool = False):
    from comp import engine

    common.checkpoint()
    timer = common.StatementTimer()
    cpu = common.MachineCpu()
    plans: list[str] = []
    with PhaseTimer() as phases:
        if explain:
            with common.auto_explain(1000) as plans, timer.installed():
                started = time.perf_counter()
                result = engine.run_comp(period=period)
                wall = time.perf_counter() - started
        else:
            with timer.installed():
                started = time.perf_counter()
                result = engine.run_comp(period=period)
                wall = time.perf_counter() - started
    return result, wall, timer, phases, cpu, plans


def time_runs(args: argparse.Namespace, months: list[dt.date], summary: common.Summary) -> None:
    from django.db.models import Count, Sum

    from comp.models import LedgerLine

    common.heading(f"comp.engine.run_comp(period=…) for {len(months)} months, {months[0]:%Y-%m} … {months[-1]:%Y-%m}")
    seconds: list[float] = []
    all_statements = common.StatementTimer()
    all_wall = 0.0
    for period in months:
        result, wall, timer, phases, cpu, plans = one_run(period, explain=args.explain)
        seconds.append(wall)
        all_statements.statements += timer.statements
        all_wall += wall
        skipped = getattr(result, "skipped", "")
        common.note(
            f"{period:%Y-%m}: {wall:6.2f} s, {result.lines_added:,} lines added, {result.targets:,} targets"
            + (f" (skipped: {skipped})" if skipped else "")
        )
        common.note(f"  phases (s): {phases.line()}")
        common.note(f"  {cpu.report()}")
        for line in heaviest_statements(timer, wall, limit=4):
            print(f"      {line}")
        if plans:
            common.note("  auto_explain plans (EXPLAIN ANALYZE, BUFFERS) of statements over 1 s:")
            common.print_plans(plans)
        summary.check(
            f"run_comp {period:%Y-%m}",
            f"{wall:.2f} s, {result.lines_added:,} lines",
            f"< {RUN_BUDGET_S:g} s",
            wall < RUN_BUDGET_S and not skipped,
        )
    ordered = sorted(seconds)
    common.note(
        f"monthly runs: max {ordered[-1]:.2f} s, p50 {pct(seconds, 50):.2f} s, total {sum(seconds):.1f} s "
        f"for {len(seconds)} months"
    )
    common.note("heaviest SQL over all the runs:")
    for line in heaviest_statements(all_statements, all_wall, limit=10):
        print(f"      {line}")
    summary.check(
        "run_comp, slowest month", f"{ordered[-1]:.2f} s", f"< {RUN_BUDGET_S:g} s", ordered[-1] < RUN_BUDGET_S
    )
    summary.info("run_comp, p50 month", f"{pct(seconds, 50):.2f} s")
    totals = LedgerLine.objects.aggregate(n=Count("pk"), total=Sum("amount"))
    by_kind = dict(LedgerLine.objects.values_list("kind").annotate(n=Count("pk")).order_by("kind"))
    common.note(f"ledger: {totals['n']:,} lines, ${totals['total'] or 0:,.2f} in all; by kind {by_kind}")
    summary.info("ledger lines after the 12 runs", f"{totals['n']:,}")
    attainment_report(months[-1])

    common.heading(f"re-run of {months[-1]:%Y-%m} (must add nothing)")
    result, wall, timer, phases, cpu, _plans = one_run(months[-1])
    skipped = getattr(result, "skipped", "")
    common.note(
        f"{months[-1]:%Y-%m} again: {wall:.2f} s, {result.lines_added:,} lines added, {result.targets:,} targets"
        + (f" (skipped: {skipped})" if skipped else "")
    )
    common.note(f"  phases (s): {phases.line()}")
    summary.check(
        f"re-run {months[-1]:%Y-%m} adds no line",
        f"{result.lines_added} lines ({wall:.2f} s)" + (f", skipped: {skipped}" if skipped else ""),
        "0 lines",
        result.lines_added == 0 and not skipped,
    )


def attainment_report(period: dt.date) -> None:
    from comp.models import Attainment

    rows = list(Attainment.objects.filter(period=period).select_related("assignment__plan"))
    by_type: dict[str, list[Decimal]] = defaultdict(list)
    for row in rows:
        if row.attainment is not None:
            by_type[row.assignment.plan.type].append(row.attainment)
    for plan_type, values in sorted(by_type.items()):
        values.sort()
        above = {t: sum(1 for v in values if v > Decimal(t)) for t in ("1.00", "1.25", "1.50")}
        common.note(
            f"attainment {period:%Y-%m} ({plan_type}, {len(values)} people): p10 {values[len(values) // 10]:.2f}, "
            f"median {values[len(values) // 2]:.2f}, p90 {values[len(values) * 9 // 10]:.2f}; "
            f"above 100/125/150 %: {above['1.00']}/{above['1.25']}/{above['1.50']}"
        )


# --- 3. The statement page ------------------------------------------------------------------


def statement_user():
    """The finance user, with a TOTP authenticator (the MFA middleware wants one for finance)."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    from revops.models import User

    user = User.objects.get(email=FINANCE)
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, TOTP_SECRET)
    return user


def time_statements(args: argparse.Namespace, months: list[dt.date], summary: common.Summary) -> None:
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from comp.models import LedgerLine

    path = "/comp/statements/{}/{:%Y-%m}/"
    common.heading(f"GET {path.format('<person_id>', months[0]).replace(f'{months[0]:%Y-%m}', '<YYYY-MM>')}")
    counts = {
        (p, d): n
        for p, d, n in LedgerLine.objects.filter(period__in=months)
        .values_list("person_id", "period")
        .annotate(n=Count("pk"))
        .order_by("person_id", "period")
    }
    if not counts:
        raise Missing("the ledger is empty (the runs added nothing): no statement to open")
    require_url(path.format(next(iter(counts))[0], months[0]))
    small = sorted(k for k, n in counts.items() if n <= 3)
    big = sorted(k for k, n in counts.items() if n >= 60)
    every = sorted(counts)
    sizes = sorted(counts.values())
    common.note(
        f"{len(counts):,} (person, month) statements with lines: lines per statement min {sizes[0]}, "
        f"median {sizes[len(sizes) // 2]}, max {sizes[-1]}; {len(small)} with ≤ 3 lines, {len(big)} with ≥ 60"
    )
    rng = random.Random(f"{args.seed}:statements")
    n = args.statement_requests
    pairs = []
    for pool, share in ((small, n // 3), (big, n // 3)):
        pairs += [rng.choice(pool) for _ in range(share)] if pool else []
    pairs += [rng.choice(every) for _ in range(n - len(pairs))]
    rng.shuffle(pairs)
    warm = [rng.choice(every) for _ in range(args.warmup)]

    client = Client()
    user = statement_user()
    client.force_login(user)
    probe = client.get(path.format(*pairs[0]))
    if probe.status_code != 200:
        common.note(f"{user.email} got HTTP {probe.status_code} {probe.get('Location', '')}: using the leader {LEADER}")
        from revops.models import User

        user = User.objects.get(email=LEADER)
        client = Client()
        client.force_login(user)
    common.note(f"as {user.email} ({user.role})")
    samples = Samples("statement page")
    by_lines: dict[str, list[int]] = defaultdict(list)
    ms_by_size: dict[str, list[float]] = defaultdict(list)
    worst = None
    for i, (person_id, period) in enumerate(warm + pairs):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(path.format(person_id, period))
            ms = (time.perf_counter() - started) * 1000
        if i < len(warm):
            continue
        if response.status_code != 200:
            samples.errors.append(f"{person_id}/{period:%Y-%m}: HTTP {response.status_code}")
            continue
        lines = counts[(person_id, period)]
        queries = len(ctx.captured_queries)
        samples.ms.append(ms)
        samples.queries.append(queries)
        size = "≤ 3 lines" if lines <= 3 else ("≥ 60 lines" if lines >= 60 else "4–59 lines")
        by_lines[size].append(queries)
        ms_by_size[size].append(ms)
        if worst is None or ms > worst[0]:
            worst = (ms, person_id, period, lines, queries, [q["sql"] for q in ctx.captured_queries])
    common.note(samples.line())
    for error in samples.errors[:3]:
        common.note(f"  error: {error}")
    for size in ("≤ 3 lines", "4–59 lines", "≥ 60 lines"):
        if by_lines.get(size):
            q, t = by_lines[size], ms_by_size[size]
            common.note(
                f"  {size}: {len(q)} requests, p50 {pct(t, 50):.1f} ms, p95 {pct(t, 95):.1f} ms; "
                f"queries min {min(q)}, max {max(q)}"
            )
    if worst:
        ms, person_id, period, lines, queries, sqls = worst
        common.note(f"slowest: person {person_id} {period:%Y-%m} ({lines} lines): {ms:.1f} ms, {queries} queries")
        shapes = Counter(" ".join(s.split())[:100] for s in sqls)
        for shape, k in shapes.most_common(3):
            print(f"      ×{k:<4} {shape}")
    if not samples.ms:
        summary.check("statement page p95", f"no 200 answer ({len(samples.errors)} errors)", "< 200 ms", False)
        return
    p95 = pct(samples.ms, 95)
    summary.check(
        "statement page p95",
        f"{p95:.1f} ms (p50 {pct(samples.ms, 50):.1f})" + (f", {len(samples.errors)} errors" if samples.errors else ""),
        f"< {PAGE_BUDGET_MS:g} ms",
        p95 < PAGE_BUDGET_MS and not samples.errors,
    )
    small_q, big_q = by_lines.get("≤ 3 lines", []), by_lines.get("≥ 60 lines", [])
    value = (
        f"min {min(samples.queries)}, max {max(samples.queries)}"
        + (f"; ≤ 3 lines {min(small_q)}–{max(small_q)}" if small_q else "")
        + (f", ≥ 60 lines {min(big_q)}–{max(big_q)}" if big_q else "")
    )
    summary.check(
        "statement page queries per request",
        value,
        "constant (min = max)",
        min(samples.queries) == max(samples.queries) and bool(small_q) and bool(big_q),
    )
    if not (small_q and big_q):
        common.note("no statement with ≤ 3 or with ≥ 60 lines in the sample: constancy not shown")


# --- Main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.comp_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200, help="Head count (default 200: 120 AEs, 60 CSMs).")
    parser.add_argument("--accounts", type=int, default=5000, help="Accounts (default 5,000).")
    parser.add_argument("--months", type=int, default=12, help="Months of daily rollups before --as-of (default 12).")
    parser.add_argument("--meters", type=int, default=len(metrics_data.METERS), help="Meters, 1–6 (default 6).")
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=DEFAULT_AS_OF,
        help="The day after the data's last day (default 2026-12-01: months 2025-12 … 2026-11 are run).",
    )
    parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
    parser.add_argument("--reuse", action="store_true", help="Keep revops_bench_comp when it already holds this data.")
    parser.add_argument("--first-seen", type=int, default=400, help="FirstSeen rows written (default 400).")
    parser.add_argument("--statement-requests", type=int, default=100, help="Statement pages timed (default 100).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests before the series (default 3).")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE of run statements over 1 s.")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.install_exit_on_sigterm()
    common.allow_test_client_host()
    summary = common.Summary(NAME)

    _url, generated = metrics_data.prepare_database(args, suffix=DATABASE_SUFFIX)
    rows = common.sql_one("SELECT count(*) FROM usage_dailyrollup")[0]
    if generated is not None:
        summary.info(
            "data generation (bench.metrics_data)",
            f"{generated.total_s:.0f} s, {generated.people} people, {rows:,} DailyRollup rows",
        )
    else:
        summary.info("data (reused)", f"{rows:,} DailyRollup rows")
    common.note(common.code_version() + " (comp/ not listed: see git status)")
    common.note(common.server_settings())
    months = months_of(args)
    failures: list[str] = []
    try:
        set_up_comp(args, months, summary)
    except Exception as exc:  # noqa: BLE001 - nothing to time without plans: report and stop
        traceback.print_exc()
        summary.check("comp set-up", f"crashed: {type(exc).__name__}: {exc}"[:120], "no exception", False)
        summary.print()
        summary.write_json(args.summary_json)
        return 0
    run_part(failures, summary, "monthly comp runs", lambda: time_runs(args, months, summary))
    run_part(failures, summary, "statement page", lambda: time_statements(args, months, summary))

    summary.print()
    summary.write_json(args.summary_json)
    if failures:
        print(f"the code under test raised in: {', '.join(failures)} (tracebacks above)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
