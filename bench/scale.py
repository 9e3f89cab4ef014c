"""Scale (issue 20): the same company at 5k, 10k and 20k accounts, every budget at each size.

    python -m bench.scale [--sizes 5000,10000,20000] [--reuse] [--page-requests 50] [--skip-forecasts]

For each size N: ``bench.metrics_data``'s company (6 meters, 18 months of daily rollups to
``--as-of`` 2026-11-20, seed 7, 200 people as in ``bench.comp_run``: 120 AEs with plans,
60 CSMs) in ``revops_bench_scale_<N/1000>k``, generated (or kept with ``--reuse`` when its
counts match; the generation's seconds are stored with the data and shown again), then,
in one process per size (one database per bench process):

1. ``refresh_metrics(as_of=…)``: metrics and alerts, budget < 120 s; open alerts counted.
2. One comp month: ``bench.comp_run``'s plans, assignments and quotas (from the whole
   18-month window), then ``comp.engine.run_comp`` for the month before ``--as-of``
   (2026-10) on an empty ledger, budget < 60 s.
3. Forecasts: ``bench.forecast_run``'s two shard processes as of ``--as-of`` − 1, budget
   < 720 s wall (``--skip-forecasts`` leaves it out; the forecast pages then show none).
4. Pages, server time through ``django.test.Client`` in this process (p95 over
   ``--page-requests`` after ``--warmup`` untimed requests, queries per request, every
   htmx panel a page loads on ``load``): the AE book (the AE with the biggest book), a
   leader's home and its panels, the triage queue as a leader (every active alert in
   scope), the account page and its panels (random accounts), a comp statement for
   2026-10 (finance), the forecast page and the account forecast panel, the 2026-10
   review (opened with ``reviews.services.open_review`` after a refresh as of 2026-10-31,
   so the month has metrics). Budget p95 < 200 ms each.

The run ends with one table: each figure at each size, the ratio largest ÷ smallest, that
ratio divided by the size ratio (1.0 = linear), and PASS/FAIL against the budget at the
largest size; then the load average during each step. Budgets missed are FAIL rows; the
exit status stays 0 unless a size's process crashes outside the timed steps.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator

from bench import common, comp_run, forecast_run, metrics_data
from bench.metrics_refresh import Samples, alert_state, current_owner_counts, describe, heaviest_statements, pct

NAME = "scale"
DEFAULT_SIZES = (5000, 10_000, 20_000)
PEOPLE = 200
REFRESH_BUDGET_S = 120.0
COMP_BUDGET_S = 60.0
FORECAST_BUDGET_S = 720.0
PAGE_BUDGET_MS = 200.0
LEADER = "bench-leader-01@example.com"
REVIEW_MONTH = dt.date(2026, 10, 1)
GENERATED_TABLE = "bench_scale_generated"  # the generation's seconds, kept with the data for --reuse
REDIS_URL = "redis://127.0.0.1:6379/11"  # the page cache: emptied at the start of each size


def suffix(n: int) -> str:
    return f"_scale_{common.si(n)}"


# --- One size (its own process) -----------------------------------------------------------


class Figures:
    """The figures of one size, in order: name → value, unit, budget, ok (None: info)."""

    def __init__(self, accounts: int) -> None:
        self.out: dict = {"accounts": accounts, "figures": {}, "loads": {}, "notes": []}

    def add(self, name: str, value: float | None, unit: str, *, budget: float | None = None, ok=None) -> None:
        if ok is None and budget is not None and value is not None:
            ok = value < budget
        self.out["figures"][name] = {"value": value, "unit": unit, "budget": budget, "ok": ok}

    def note(self, text: str) -> None:
        self.out["notes"].append(text)
        common.note(text)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        load = os.getloadavg()[0]
        cpu = common.MachineCpu()
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - the code under test crashed: show it, carry on
            traceback.print_exc()
            self.add(f"{name}: crashed", None, f"{type(exc).__name__}: {exc}"[:100], ok=False)
        finally:
            self.out["loads"][name] = f"{load:.1f} → {os.getloadavg()[0]:.1f}"
            common.note(cpu.report())


def generated_seconds(generated) -> tuple[float | None, str]:
    """Store (after a generation) or read (after --reuse) the generation's seconds."""
    if generated is not None:
        common.sql_exec(
            f"CREATE TABLE IF NOT EXISTS {GENERATED_TABLE} (seconds float8, rollups bigint, load_avg text,"
            " at timestamptz DEFAULT now())"
        )
        common.sql_exec(f"TRUNCATE {GENERATED_TABLE}")
        common.sql_exec(
            f"INSERT INTO {GENERATED_TABLE} (seconds, rollups, load_avg) VALUES (%s, %s, %s)",  # noqa: S608
            [generated.total_s, generated.rollups, " ".join(f"{x:.2f}" for x in os.getloadavg())],
        )
        return generated.total_s, "generated in this run"
    found = common.sql_one("SELECT to_regclass(%s) IS NOT NULL", [GENERATED_TABLE])[0]
    # to_jsonb: a table written before load_avg was recorded still reads.
    sql = f"SELECT seconds, at, COALESCE(to_jsonb(g) ->> 'load_avg', 'not recorded') FROM {GENERATED_TABLE} g"  # noqa: S608
    row = common.sql_one(sql) if found else None
    if row is None:
        return None, "reused; generation time not recorded"
    return row[0], f"reused; generated {row[1]:%Y-%m-%d %H:%M} UTC in {row[0]:.0f} s (load average then {row[2]})"


def reset_state() -> None:
    """Forget what a previous run stored: metrics and alerts, forecasts, reviews (comp is reset by its set-up)."""
    from django.apps import apps
    from django.db import connection, transaction

    from bench.metrics_refresh import reset_metric_tables

    emptied = reset_metric_tables()
    forecast_run.truncate()
    tables = sorted(m._meta.db_table for m in apps.get_app_config("reviews").get_models() if m._meta.managed)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL revops.allow_truncate = on")
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
    common.note(f"emptied: {', '.join(emptied) or 'no metrics or alerts'}; forecasting tables; {', '.join(tables)}")


def time_refresh(args: argparse.Namespace, figures: Figures) -> None:
    from usage.signals.services import refresh_metrics

    common.heading(f"refresh_metrics(as_of={args.as_of})")
    common.checkpoint()
    timer = common.StatementTimer()
    with timer.installed():
        started = time.perf_counter()
        result = refresh_metrics(as_of=args.as_of)
        wall = time.perf_counter() - started
    state = alert_state(args.as_of)
    common.note(f"{wall:.2f} s → {describe(result)}")
    figures.note(
        f"alerts: {state.get('open')} active (states {state.get('open_states')}), {state.get('total')} in all; "
        f"by state {state.get('by_state')}; active by kind {state.get('open_by_kind')}"
    )
    for line in heaviest_statements(timer, wall):
        print(f"    {line}", flush=True)
    figures.add("refresh_metrics s", wall, "s", budget=REFRESH_BUDGET_S)
    figures.add("active alerts after the refresh", state.get("open"), "count")


def time_comp(args: argparse.Namespace, figures: Figures) -> None:
    comp_args = argparse.Namespace(as_of=args.as_of, months=args.months, seed=args.seed, first_seen=args.first_seen)
    months = comp_run.months_of(comp_args)  # quotas from the whole window; only the last month is run
    comp_run.set_up_comp(comp_args, months, common.Summary(NAME))
    period = months[-1]
    common.heading(f"comp.engine.run_comp(period={period}) on an empty ledger")
    result, wall, timer, phases, _cpu, _plans = comp_run.one_run(period)
    skipped = getattr(result, "skipped", "")
    common.note(
        f"{period:%Y-%m}: {wall:.2f} s, {result.lines_added:,} lines added, {result.targets:,} targets"
        + (f" (skipped: {skipped})" if skipped else "")
    )
    common.note(f"phases (s): {phases.line()}")
    for line in heaviest_statements(timer, wall, limit=6):
        print(f"    {line}", flush=True)
    figures.add(
        f"comp month {period:%Y-%m} s", wall, "s", budget=COMP_BUDGET_S, ok=wall < COMP_BUDGET_S and not skipped
    )
    figures.add(f"comp month {period:%Y-%m} ledger lines", result.lines_added, "count")


def time_forecasts(args: argparse.Namespace, url: str, figures: Figures) -> None:
    from accounts.models import Account
    from forecasting.models import AccountForecast

    as_of = args.as_of - dt.timedelta(days=1)
    common.heading(f"run_forecasts(as_of={as_of}, shard=i, shards=2) in 2 processes at once")
    forecast_run.truncate()
    common.checkpoint()
    wall, results = forecast_run.run_shards(url, as_of, [0, 1], 2, ids_file=None, blas=None)
    for line in forecast_run.phase_lines(results):
        common.note(line)
    stored = AccountForecast.objects.filter(as_of=as_of).count()
    total = Account.objects.count()
    common.note(f"{stored:,} of {total:,} accounts forecast in {wall:.1f} s wall")
    figures.add("forecasts, 2 shards s (wall)", wall, "s", budget=FORECAST_BUDGET_S, ok=wall < FORECAST_BUDGET_S)
    if stored != total:
        figures.add("every account forecast once", stored, "count", ok=False)


def probe(user, path: str) -> int:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.get(path).status_code


def time_pages(args: argparse.Namespace, figures: Figures, with_forecasts: bool) -> None:
    from django.db.models import Count

    from accounts.models import Account
    from bench.metrics_refresh import time_page, users
    from comp.models import LedgerLine
    from reviews.services import open_review
    from revops.clock import today_utc
    from usage.access import alerts_visible_to
    from usage.models import ACTIVE_ALERT_STATES
    from usage.signals.services import refresh_metrics

    people = users()
    by_id = {u.id: u for u in people.values()}
    leader = people[LEADER]
    summary = common.Summary(NAME)
    rng = random.Random(f"{args.seed}:scale-pages")
    count = args.warmup + args.page_requests
    plan: list[tuple[str, object, list[tuple[str, str | None]]]] = []

    person, n = current_owner_counts(["land_ae", "expand_ae"], args.as_of)[0]
    ae = by_id[person]
    figures.note(f"AE with the biggest book: {ae.email} ({n} accounts on {args.as_of})")
    plan.append(("AE book /book/", ae, [("/book/", None)] * count))
    plan.append(("leader home /", leader, [("/", None)] * count))

    visible = alerts_visible_to(leader, on=today_utc())
    active = visible.filter(state__in=ACTIVE_ALERT_STATES).count()
    by_state = dict(visible.values_list("state").annotate(n=Count("pk")).order_by("state"))
    figures.note(
        f"triage: {leader.email} sees {active:,} active alerts (the queue's default filter), "
        f"{sum(by_state.values()):,} in all states {by_state}"
    )
    figures.add("alerts the triage filter covers (leader, active)", active, "count")
    plan.append(("triage /alerts/ (leader, active)", leader, [("/alerts/", None)] * count))
    if active < 5000:
        # The queue filters "active" or one state (no all-states filter): a closed state
        # holding more alerts than the active ones is timed as well.
        state, biggest = max(by_state.items(), key=lambda kv: kv[1], default=("", 0))
        if state and state not in ACTIVE_ALERT_STATES and biggest > active:
            figures.note(f"fewer than 5,000 active alerts: also timed /alerts/?state={state} ({biggest:,} alerts)")
            figures.add(f"alerts in /alerts/?state={state}", biggest, "count")
            plan.append((f"triage /alerts/?state={state}", leader, [(f"/alerts/?state={state}", None)] * count))
        else:
            figures.note(
                f"fewer than 5,000 active alerts ({active:,}) and no state holds more: the data have "
                f"{sum(by_state.values()):,} alerts in all (the queue filters 'active' or one state)"
            )

    externals = list(Account.objects.order_by("external_id").values_list("external_id", flat=True))
    accounts = [rng.choice(externals) for _ in range(count)]
    plan.append(("account page", leader, [(f"/accounts/{ext}/", ext) for ext in accounts]))

    lines = dict(
        LedgerLine.objects.filter(period=REVIEW_MONTH)
        .values_list("person_id")
        .annotate(n=Count("pk"))
        .order_by("person_id")
    )
    if lines:
        finance = comp_run.statement_user()
        path = f"/comp/statements/{{}}/{REVIEW_MONTH:%Y-%m}/"
        status = probe(finance, path.format(next(iter(lines))))
        viewer = finance if status == 200 else leader
        if status != 200:
            figures.note(f"{finance.email} got HTTP {status} on a statement: timed as {LEADER}")
        sizes = sorted(lines.values())
        figures.note(
            f"statements {REVIEW_MONTH:%Y-%m}: {len(lines)} people with lines, lines per statement "
            f"min {sizes[0]}, median {sizes[len(sizes) // 2]}, max {sizes[-1]}; as {viewer.email}"
        )
        chosen = [rng.choice(sorted(lines)) for _ in range(count)]
        plan.append(("statement 2026-10", viewer, [(path.format(p), None) for p in chosen]))
    else:
        figures.add("statement 2026-10: no ledger line", None, "missing", ok=False)

    if not with_forecasts:
        figures.note("--skip-forecasts: the forecast page and panel show no forecast")
    plan.append(("forecast /forecasts/", leader, [("/forecasts/", None)] * count))

    common.heading(f"the {REVIEW_MONTH:%Y-%m} review: refresh as of 2026-10-31 (info), then open_review")
    started = time.perf_counter()
    refresh_metrics(as_of=dt.date(2026, 10, 31))
    refresh_s = time.perf_counter() - started
    started = time.perf_counter()
    review = open_review(REVIEW_MONTH, leader)
    figures.note(
        f"refresh as of 2026-10-31 {refresh_s:.1f} s; review {review.month:%Y-%m} opened as of {review.as_of} "
        f"in {time.perf_counter() - started:.2f} s ({len(json.dumps(review.snapshot)):,} bytes of snapshot)"
    )
    plan.append(("review /reviews/2026-10/", leader, [(f"/reviews/{REVIEW_MONTH:%Y-%m}/", None)] * count))

    # Refresh, comp run and forecasts wrote tens of thousands of rows that the planner has
    # no statistics for yet; autoanalyze would gather them within a minute of the writes,
    # but it is off on some servers (this machine's: SHOW autovacuum), so gather them now.
    autovacuum = common.sql_one("SHOW autovacuum")[0]
    started = time.perf_counter()
    common.sql_exec("ANALYZE")
    figures.note(f"autovacuum = {autovacuum}; ANALYZE before the pages: {time.perf_counter() - started:.1f} s")
    for figure, user, paths in plan:
        with figures.step(f"page: {figure}"):
            measured = time_page(summary, figure=figure, user=user, paths=paths, warmup=args.warmup)
            for name, samples in measured.items():
                add_samples(figures, name, samples)


def add_samples(figures: Figures, name: str, samples: Samples) -> None:
    """One row per page or panel: p95 ms, with the most queries a request made."""
    name = name.replace("<external_id>", "<ext>") + " p95 ms (queries)"
    if not samples.ms:
        figures.add(name, None, f"no 200 answer ({len(samples.errors)} errors)", ok=False)
        return
    p95 = pct(samples.ms, 95)
    figures.add(name, p95, "ms", budget=PAGE_BUDGET_MS, ok=p95 < PAGE_BUDGET_MS and not samples.errors)
    figures.out["figures"][name]["queries"] = max(samples.queries)
    figures.out["figures"][name]["errors"] = len(samples.errors)


def one_size(args: argparse.Namespace) -> int:
    n = args.one
    figures = Figures(n)
    data = argparse.Namespace(
        accounts=n,
        months=args.months,
        meters=args.meters,
        as_of=args.as_of,
        seed=args.seed,
        reuse=args.reuse,
        people=PEOPLE,
    )
    common.heading(f"size {n:,} accounts")
    with figures.step("generate"):
        url, generated = metrics_data.prepare_database(data, suffix=suffix(n))
        seconds, how = generated_seconds(generated)
        rows = common.sql_one("SELECT count(*) FROM usage_dailyrollup")[0]
        figures.note(f"data: {rows:,} DailyRollup rows, {how}")
        figures.add("generate s (info)", seconds, "s")
        figures.add("DailyRollup rows", rows, "count")
    common.note(common.code_version())
    common.note(common.server_settings())
    from django.core.cache import cache

    cache.clear()  # the bench's own Redis database: no page cached by another size
    reset_state()
    with figures.step("refresh_metrics"):
        time_refresh(args, figures)
    with figures.step("comp month"):
        time_comp(args, figures)
    if args.skip_forecasts:
        figures.note("--skip-forecasts: no forecast run")
    else:
        with figures.step("forecasts"):
            time_forecasts(args, url, figures)
    with figures.step("pages (all)"):
        time_pages(args, figures, not args.skip_forecasts)
    with open(args.result_file, "w") as handle:
        json.dump(figures.out, handle)
    return 0


# --- The table ------------------------------------------------------------------------------


def cell(figure: dict | None) -> str:
    if figure is None:
        return "—"
    value = figure["value"]
    if value is None:
        return figure["unit"][:40]
    if figure["unit"] == "s":
        return f"{value:.1f}"
    if figure["unit"] == "ms":
        return f"{value:.1f} ({figure.get('queries', '?')}q)"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.0f}"


def print_table(sizes: list[int], results: dict[int, dict]) -> None:
    names: list[str] = []
    for n in sizes:
        for name in results.get(n, {}).get("figures", {}):
            if name not in names:
                names.append(name)
    first, last = sizes[0], sizes[-1]
    factor = last / first
    labels = [common.si(n) for n in sizes]
    headers = [
        "figure",
        *labels,
        f"{common.si(last)}/{common.si(first)}",
        f"÷ {factor:g}",
        "budget",
        f"at {labels[-1]}",
    ]
    table = []
    for name in names:
        row = [results.get(n, {}).get("figures", {}).get(name) for n in sizes]
        a, b = row[0], row[-1]
        ratio = ""
        per = ""
        if a and b and a["value"] and b["value"] is not None and len(sizes) > 1:
            r = b["value"] / a["value"]
            ratio, per = f"{r:.2f}", f"{r / factor:.2f}"
        budget = verdict = ""
        if b is not None and (b["budget"] is not None or b["ok"] is not None):
            budget = f"< {b['budget']:g} {b['unit']}" if b["budget"] is not None else ""
            verdict = "PASS" if b["ok"] else "FAIL"
        elif b is None:
            verdict = "missing"
        table.append([name, *(cell(x) for x in row), ratio, per, budget, verdict])
    show(headers, table, "scale: every figure at each size (s, ms, counts)")

    steps: list[str] = []
    for n in sizes:
        for step in results.get(n, {}).get("loads", {}):
            if step not in steps:
                steps.append(step)
    rows = [[s, *(results.get(n, {}).get("loads", {}).get(s, "—") for n in sizes)] for s in steps]
    show(["step", *labels], rows, "load average (1 min) at the start → end of each step")


def show(headers: list[str], rows: list[list[str]], title: str) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print()
    print(f"== {title} ==")
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(flush=True)


# --- Main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(n) for n in DEFAULT_SIZES),
        help="Comma-separated account counts (default 5000,10000,20000).",
    )
    parser.add_argument("--reuse", action="store_true", help="Keep a size's database when it holds this data.")
    parser.add_argument("--page-requests", type=int, default=50, help="Timed requests per page (default 50).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests before each series (default 3).")
    parser.add_argument("--skip-forecasts", action="store_true", help="Leave the forecast run out.")
    parser.add_argument("--months", type=int, default=18, help="Months of daily rollups (default 18).")
    parser.add_argument("--meters", type=int, default=len(metrics_data.METERS), help="Meters, 1–6 (default 6).")
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=metrics_data.DEFAULT_AS_OF, help="Metrics day (2026-11-20)."
    )
    parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
    parser.add_argument("--first-seen", type=int, default=400, help="FirstSeen rows for the SPIFFs (default 400).")
    parser.add_argument("--summary-json", default=None, help="Write every size's figures here as JSON.")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # one size (internal)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.install_exit_on_sigterm()
    common.allow_test_client_host()
    os.environ.setdefault("REDIS_URL", REDIS_URL)
    if args.one is not None:
        return one_size(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    common.heading(f"scale: {', '.join(f'{n:,}' for n in sizes)} accounts")
    common.note(common.machine_line())
    results: dict[int, dict] = {}
    crashed = False
    for n in sizes:
        handle, path = tempfile.mkstemp(prefix="revops-bench-scale-", suffix=".json")
        os.close(handle)
        cmd = [sys.executable, "-m", "bench.scale", "--one", str(n), "--result-file", path]
        cmd += ["--page-requests", str(args.page_requests), "--warmup", str(args.warmup), "--months", str(args.months)]
        cmd += ["--meters", str(args.meters), "--as-of", args.as_of.isoformat(), "--seed", str(args.seed)]
        cmd += ["--first-seen", str(args.first_seen)]
        cmd += ["--reuse"] if args.reuse else []
        cmd += ["--skip-forecasts"] if args.skip_forecasts else []
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=common.BASE_DIR, check=False)
        common.note(f"size {n:,}: {time.perf_counter() - started:.0f} s in all, exit status {done.returncode}")
        try:
            with open(path) as result:
                results[n] = json.load(result)
        except (OSError, ValueError):
            crashed = True
            common.note(f"size {n:,}: no result (the process crashed: see above)")
        finally:
            os.unlink(path)
    print_table(sizes, results)
    if args.summary_json:
        with open(args.summary_json, "w") as out:
            json.dump(results, out)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
