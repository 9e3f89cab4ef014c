"""Forecasting (#6): the nightly forecast of 5,000 accounts on two shards, and shard-independence.

    python -m bench.forecast_run [--reuse] [--accounts 5000] [--as-of 2026-11-20] [--shards 2]
                                 [--sample 200] [--sample-as-of 2026-10-31] [--blas-threads N]

Data: ``bench.metrics_data``'s company in ``revops_bench_forecast`` (the bench database's
name plus ``_forecast``): 5,000 accounts, 18 months of daily rollups (~13M rows) up to the
day before ``--as-of``, dropped, re-created and generated (~6 minutes on 2 cores), or kept
with ``--reuse`` when it already holds exactly that. The forecasting tables are emptied
with ``TRUNCATE`` before each run (the snapshots refuse ``DELETE``).

Forecasts are made as of the data's last day (``--as-of`` − 1: ``as_of`` is the last day
of actuals a forecast sees).

1. **The nightly run**: ``--shards`` processes started at once, each running
   ``forecasting.services.run_forecasts(as_of=…, shard=i, shards=n)`` — what each Celery
   worker process does with one ``run_forecast_shard`` task. Timed: the wall time from
   starting the processes to the last one finishing (process start, Django set-up and the
   statsmodels import included), and inside each process the time per phase (cohort
   curves, history reads, the engine by method, snapshot writes), taken by wrapping the
   module's functions. Budget: < 300 s for 5,000 accounts on 2 cores.
2. **Shards agree**: ``--sample`` accounts (seeded) forecast as of ``--sample-as-of`` with
   one shard, then (tables truncated) with ``--shards`` shards in parallel processes; every
   stored header (method, history days, components) and point (day, days, value, lower,
   upper) must be identical. The sample is imposed by narrowing
   ``services.shard_account_ids`` in the worker processes; everything else is the real code.
3. **Methods**: accounts per forecast method in the nightly run, and the rows stored.

``--blas-threads N`` sets ``OPENBLAS_NUM_THREADS`` in the workers (default: what the
engine sets, 1, unless the environment says otherwise), to measure thread contention.
The exit status stays 0 when a budget is missed (FAIL rows); a crash is printed and
reported as FAIL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict

from bench import common, metrics_data

NAME = "forecast_run"
DATABASE_SUFFIX = "_forecast"
RUN_BUDGET_S = 300.0
TABLES = ("forecasting_forecastpoint", "forecasting_accountforecast", "forecasting_forecastrun")


# --- The worker process --------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    """One shard in this process (Django set up on the bench database); prints a JSON result line."""
    common.setup(os.environ["DATABASE_URL"], migrate=False)
    from forecasting import engine, services

    if args.ids_file:
        with open(args.ids_file) as handle:
            sample = set(json.load(handle))
        original_ids = services.shard_account_ids
        services.shard_account_ids = lambda *, shard, shards: [
            pk for pk in original_ids(shard=shard, shards=shards) if pk in sample
        ]

    phases: dict[str, float] = defaultdict(float)
    by_method: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def timed(name, fn):
        def wrapper(*a, **kw):
            started = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] += time.perf_counter() - started

        return wrapper

    forecast = engine.forecast_account_series

    def forecast_timed(*a, **kw):
        started = time.perf_counter()
        result = forecast(*a, **kw)
        seconds = time.perf_counter() - started
        phases["engine: forecast_account_series"] += seconds
        by_method[result.method][0] += 1
        by_method[result.method][1] += seconds
        return result

    services.cohort_curves = timed("cohort curves (one SQL read)", services.cohort_curves)
    services.history_for = timed("history reads (one SQL per batch)", services.history_for)
    services._prepare = timed("points: stored rows, weekly sums", services._prepare)
    services._write = timed("snapshot writes (bulk_create)", services._write)
    engine.forecast_account_series = forecast_timed
    started = time.perf_counter()
    result = services.run_forecasts(as_of=args.worker_as_of, shard=args.shard, shards=args.shards)
    wall = time.perf_counter() - started
    out = {
        "shard": args.shard,
        "accounts": result.accounts,
        "skipped": result.skipped,
        "seconds": wall,
        "methods": result.methods,
        "phases": dict(phases),
        "by_method": {k: {"accounts": n, "seconds": s} for k, (n, s) in by_method.items()},
        "blas": os.environ.get("OPENBLAS_NUM_THREADS", ""),
    }
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# --- The bench process -----------------------------------------------------------------------


def truncate() -> None:
    common.sql_exec("TRUNCATE " + ", ".join(TABLES))


def run_shards(
    url: str, as_of: dt.date, shards: list[int | None], n: int, *, ids_file: str | None, blas: str | None
) -> tuple[float, list[dict]]:
    """Start one worker per shard at once; wait for all; (wall seconds, their results)."""
    env = common.bench_env(url)
    if blas:
        env["OPENBLAS_NUM_THREADS"] = blas
    procs = []
    started = time.perf_counter()
    for shard in shards:
        cmd = [sys.executable, "-m", "bench.forecast_run", "--worker", "--worker-as-of", as_of.isoformat()]
        cmd += ["--shards", str(n)] + (["--shard", str(shard)] if shard is not None else [])
        cmd += ["--ids-file", ids_file] if ids_file else []
        procs.append(
            subprocess.Popen(
                cmd, cwd=common.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    failed = []
    for shard, proc in zip(shards, procs, strict=True):
        stdout, stderr = proc.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            failed.append(f"shard {shard}: exit {proc.returncode}\n{stderr[-3000:]}")
            continue
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    wall = time.perf_counter() - started
    if failed:
        raise RuntimeError("worker(s) failed: " + "\n".join(failed))
    return wall, results


def stored(as_of: dt.date, account_ids: list[int] | None = None) -> dict[int, tuple]:
    """Every stored forecast as of ``as_of``: account → (method, history days, components, points)."""
    from forecasting.models import AccountForecast, ForecastPoint

    headers = AccountForecast.objects.filter(as_of=as_of)
    if account_ids is not None:
        headers = headers.filter(account_id__in=account_ids)
    points: dict[int, list[tuple]] = defaultdict(list)
    rows = (
        ForecastPoint.objects.filter(forecast__in=headers)
        .order_by("forecast_id", "day")
        .values_list("forecast__account_id", "day", "days", "value", "lower", "upper")
    )
    for account_id, *point in rows:
        points[account_id].append(tuple(point))
    return {
        f.account_id: (f.method, f.history_days, json.dumps(f.components, sort_keys=True), points[f.account_id])
        for f in headers
    }


def phase_lines(results: list[dict]) -> list[str]:
    lines = []
    for r in sorted(results, key=lambda r: r.get("shard") or 0):
        accounts = max(1, r["accounts"])
        phases = r["phases"]
        engine_s = phases.get("engine: forecast_account_series", 0.0)
        accounted = sum(phases.values())
        parts = ", ".join(f"{name} {secs:.1f} s" for name, secs in sorted(phases.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"shard {r['shard']}: {r['accounts']:,} accounts in {r['seconds']:.1f} s "
            f"({1000 * r['seconds'] / accounts:.1f} ms per account, engine {1000 * engine_s / accounts:.1f} ms); "
            f"{parts}, other {r['seconds'] - accounted:.1f} s"
        )
        methods = ", ".join(
            f"{m} {v['accounts']:,} × {1000 * v['seconds'] / max(1, v['accounts']):.1f} ms"
            for m, v in sorted(r["by_method"].items())
        )
        lines.append(f"  engine by method: {methods}")
    return lines


def nightly(args: argparse.Namespace, url: str, summary: common.Summary) -> None:
    from django.db.models import Count

    from forecasting.models import AccountForecast, ForecastPoint, ForecastRun

    as_of = args.as_of - dt.timedelta(days=1)
    n = args.shards
    common.heading(f"run_forecasts(as_of={as_of}, shard=i, shards={n}) in {n} processes at once")
    truncate()
    common.checkpoint()
    cpu = common.MachineCpu()
    wall, results = run_shards(url, as_of, list(range(n)), n, ids_file=None, blas=args.blas_threads)
    accounts = sum(r["accounts"] for r in results)
    common.note(f"{accounts:,} accounts forecast in {wall:.1f} s wall ({common.rate(accounts, wall)} accounts)")
    common.note(cpu.report())
    common.note(f"OPENBLAS_NUM_THREADS in the workers: {results[0]['blas'] or '(unset)'}")
    for line in phase_lines(results):
        common.note(line)
    for run in ForecastRun.objects.filter(as_of=as_of).order_by("shard"):
        common.note(f"ForecastRun shard {run.shard}/{run.shards}: {run.accounts:,} accounts, {run.seconds:.1f} s")
    summary.check(
        f"{accounts:,} accounts on {n} shards (wall)", f"{wall:.1f} s", f"< {RUN_BUDGET_S:g} s", wall < RUN_BUDGET_S
    )
    per_account = sum(r["seconds"] for r in results) / max(1, accounts)
    engine_s = sum(r["phases"].get("engine: forecast_account_series", 0.0) for r in results)
    summary.info("  per account (shard seconds / accounts)", f"{1000 * per_account:.1f} ms")
    summary.info("  engine per account", f"{1000 * engine_s / max(1, accounts):.1f} ms")
    by_method: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in results:
        for m, v in r["by_method"].items():
            by_method[m][0] += v["accounts"]
            by_method[m][1] += v["seconds"]
    for m, (count, secs) in sorted(by_method.items()):
        summary.info(f"  engine, {m}", f"{1000 * secs / max(1, count):.1f} ms per account")

    common.heading("methods")
    methods = dict(
        AccountForecast.objects.filter(as_of=as_of).values_list("method").annotate(n=Count("pk")).order_by("method")
    )
    reported = Counter()
    for r in results:
        reported.update(r["methods"])
    points = ForecastPoint.objects.count()
    common.note(f"stored: {methods} ({sum(methods.values()):,} forecasts, {points:,} points)")
    common.note(f"reported by the workers: {dict(sorted(reported.items()))}")
    from accounts.models import Account

    total = Account.objects.count()
    summary.check(
        "every account forecast once",
        f"{sum(methods.values()):,} of {total:,}",
        "all",
        sum(methods.values()) == total and dict(reported) == methods,
    )
    summary.info("methods", ", ".join(f"{k} {v:,}" for k, v in methods.items()))
    summary.info("points stored", f"{points:,}")


def shards_agree(args: argparse.Namespace, url: str, summary: common.Summary) -> None:
    from accounts.models import Account

    as_of = args.sample_as_of
    ids = sorted(Account.objects.values_list("pk", flat=True))
    sample = sorted(random.Random(f"{args.seed}:forecast-sample").sample(ids, min(args.sample, len(ids))))
    common.heading(f"{len(sample)} accounts as of {as_of}: 1 shard, then {args.shards} shards in parallel processes")
    handle, ids_file = tempfile.mkstemp(prefix="revops-bench-forecast-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(sample, out)
        truncate()
        wall1, results1 = run_shards(url, as_of, [None], 1, ids_file=ids_file, blas=args.blas_threads)
        one = stored(as_of, sample)
        truncate()
        wall2, results2 = run_shards(
            url, as_of, list(range(args.shards)), args.shards, ids_file=ids_file, blas=args.blas_threads
        )
        two = stored(as_of, sample)
    finally:
        os.unlink(ids_file)
    common.note(
        f"1 shard: {len(one)} forecasts, {wall1:.1f} s; {args.shards} shards: {len(two)} forecasts, {wall2:.1f} s"
    )
    for line in phase_lines(results1 + results2):
        common.note(line)
    methods = Counter(v[0] for v in one.values())
    common.note(f"methods in the sample: {dict(sorted(methods.items()))}")
    differ = sorted(pk for pk in set(one) | set(two) if one.get(pk) != two.get(pk))
    points = sum(len(v[3]) for v in one.values())
    for pk in differ[:5]:
        a, b = one.get(pk), two.get(pk)
        common.note(f"account {pk} differs: 1 shard {a and a[:3]}; {args.shards} shards {b and b[:3]}")
    summary.check(
        f"1 shard = {args.shards} shards ({len(sample)} accounts as of {as_of})",
        f"{len(differ)} of {len(one)} forecasts differ ({points:,} points compared)",
        "0 differ",
        not differ and len(one) == len(sample),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast_run", description=__doc__.split("\n\n")[0])
    metrics_data.add_data_arguments(parser)
    parser.add_argument("--shards", type=int, default=2, help="Shards, one process each (default 2).")
    parser.add_argument("--sample", type=int, default=200, help="Accounts in the 1-vs-N-shard check (default 200).")
    parser.add_argument(
        "--sample-as-of",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 10, 31),
        help="The day the sample is forecast as of (default 2026-10-31, a backdated run).",
    )
    parser.add_argument("--blas-threads", default=None, help="OPENBLAS_NUM_THREADS for the workers.")
    parser.add_argument("--skip-nightly", action="store_true", help="Only the 1-vs-N-shard check.")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    # The worker process (internal).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-as-of", type=dt.date.fromisoformat, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ids-file", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    common.install_exit_on_sigterm()
    summary = common.Summary(NAME)
    url, generated = metrics_data.prepare_database(args, suffix=DATABASE_SUFFIX)
    rows = common.sql_one("SELECT count(*) FROM usage_dailyrollup")[0]
    if generated is not None:
        summary.info("data generation (bench.metrics_data)", f"{generated.total_s:.0f} s, {rows:,} DailyRollup rows")
    else:
        summary.info("data (reused)", f"{rows:,} DailyRollup rows")
    common.note(common.code_version() + " (forecasting/ not listed: see git status)")
    common.note(common.server_settings())
    from django.db import connections

    parts = [] if args.skip_nightly else [("nightly forecast run", nightly)]
    parts.append(("1 shard vs N shards", shards_agree))
    for figure, fn in parts:
        try:
            fn(args, url, summary)
        except Exception as exc:  # noqa: BLE001 - the code under test crashed: show it, carry on
            traceback.print_exc()
            summary.check(figure, f"crashed: {type(exc).__name__}: {exc}"[:120], "no exception", False)
        connections.close_all()
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
