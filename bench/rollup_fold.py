"""Incremental rollup: ``usage.ingestion.rollups.fold_all_deltas()`` after one 100,000-event batch.

    python -m bench.rollup_fold [--histories 1000000,10000000] [--batch 100000] [--no-rebuild]

For each history size H, a database holding H events already ingested and folded: the
largest uses the bench database itself (what ``bench.bulk_import`` left there, reused
when it holds about H events), the others a sibling (``revops_bench_1m``). A missing
history is built with the bulk import path (``import_usage_stream`` of the generated
CSV), then folded and vacuumed (untimed). Then 100,000 new events go through the API's
storage path (``usage.ingestion.ingest.ingest_batch``, 1,000 per transaction): 90% on the newest
day and the one before it, 10% late ones up to 30 days back. The timed step is
``fold_all_deltas()``. Each size runs in a child process of its own. At the largest
size, ``rebuild_from_events()`` is timed too (information) and its rows are compared
with the incremental ones.

Budget (issue): < 2 s, the same with 1M or 10M events of history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

from bench import common
from bench.datagen import Population

NAME = "rollup_fold"
BUDGET_S = 2.0


def _classify(sql: str) -> str | None:
    if "DELETE FROM usage_rollupdelta" in sql and "claimed" in sql:
        return "fold statement (claim deltas, upsert DailyRollup)"
    if "WITH tiers AS" in sql:
        return "re-price touched account × meter × months"
    if "FROM usage_rollupdelta LIMIT" in sql:
        return "count pending deltas"
    return None


def _no_gap(_sql: str) -> str | None:
    return None


def rollup_checksum(first: dt.date, last: dt.date) -> tuple:
    return common.sql_one(
        "SELECT count(*), sum(quantity), sum(revenue), sum(event_count) FROM usage_dailyrollup"
        " WHERE day BETWEEN %s AND %s",
        [first, last],
    )


def build_history(population: Population, size: int, tmpdir: str | None) -> float:
    from bench.bulk_import import reset_usage_tables
    from usage.ingestion.csv_import import import_usage_file

    reset_usage_tables()
    population.ensure_reference_data()
    handle, path = tempfile.mkstemp(prefix="revops-bench-history-", suffix=".csv", dir=tmpdir)
    os.close(handle)
    try:
        started = time.perf_counter()
        stats = population.write_csv(path, events=size, as_of=dt.datetime.now(dt.UTC).date())
        common.note(f"generated {stats.rows:,} history rows in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        result = import_usage_file(path)
        seconds = time.perf_counter() - started
        common.note(f"imported {result.accepted:,} events in {seconds:.1f} s ({result.rows / seconds:,.0f} rows/s)")
    finally:
        os.unlink(path)
    return seconds


def run_one(size: int, *, rebuild: bool, batch: int, per_transaction: int, seed: int, explain: bool, tmpdir) -> dict:
    url = common.setup()
    from usage.ingestion.ingest import ingest_batch
    from usage.ingestion.rollups import (
        fold_all_deltas,
        fold_deltas,
        pending_delta_count,
        raw_event_window,
        rebuild_from_events,
    )

    out: dict = {"size": size, "database": common.database_name(url)}
    common.heading(f"rollup fold with {size:,} events of history ({common.database_name(url)})")
    common.note(common.machine_line())
    common.note(common.code_version())
    population = Population(seed)
    population.ensure_reference_data()
    events = common.sql_one("SELECT count(*) FROM usage_event")[0]
    if events < 0.9 * size:
        common.note(f"{events:,} events stored: building a {size:,}-event history with the bulk import path")
        out["history_build_s"] = build_history(population, size, tmpdir)
        events = common.sql_one("SELECT count(*) FROM usage_event")[0]
    else:
        common.note(f"reusing the {events:,} events already stored")
    pending = pending_delta_count()
    if pending:
        started = time.perf_counter()
        fold_deltas(limit=pending + 1, wait=True)
        fold_all_deltas()
        out["history_fold_s"] = time.perf_counter() - started
        common.note(f"history folded: {pending:,} delta rows in {out['history_fold_s']:.1f} s (untimed preparation)")
    started = time.perf_counter()
    common.sql_exec("VACUUM (ANALYZE) usage_dailyrollup, usage_rollupdelta, usage_firstseen, usage_eventkey")
    common.note(f"VACUUM ANALYZE of the rollup tables: {time.perf_counter() - started:.1f} s (untimed)")
    rollup_rows, last_day = common.sql_one("SELECT count(*), max(day) FROM usage_dailyrollup")
    out.update(events=events, rollup_rows=rollup_rows)
    common.note(f"history: {events:,} events, {rollup_rows:,} DailyRollup rows, newest day {last_day}")

    today = dt.datetime.now(dt.UTC).date()
    # The newest day of the history, or the day after it: "today" for a history that ends yesterday.
    anchor = min(last_day + dt.timedelta(days=1), today) if last_day else today
    run_id = f"{int(time.time()):x}"
    new = population.events(count=batch, anchor=anchor, late_share=0.1, late_days=30, id_prefix=f"late-{run_id}")
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    accepted = 0
    for i in range(0, len(new), per_transaction):
        accepted += ingest_batch(new[i : i + per_transaction], received_at=now).accepted
    out["ingest_s"] = time.perf_counter() - started
    deltas = pending_delta_count()
    out["delta_rows"] = deltas
    common.note(
        f"ingested {accepted:,} new events (anchor day {anchor}, 10% up to 30 days late) in "
        f"{out['ingest_s']:.1f} s via ingest_batch × {per_transaction:,}: {deltas:,} delta rows pending"
    )

    common.checkpoint()
    timer = common.StatementTimer()
    plans: list[str] = []
    cpu = common.MachineCpu()
    if explain:
        with common.auto_explain(100) as plans, timer.installed():
            started = time.perf_counter()
            folded = fold_all_deltas()
            finished = time.perf_counter()
    else:
        with timer.installed():
            started = time.perf_counter()
            folded = fold_all_deltas()
            finished = time.perf_counter()
    out["fold_s"] = finished - started
    repriced = sum(s.rowcount for s in timer.statements if "WITH tiers AS" in s.sql)
    common.note(cpu.report())
    common.note(
        f"fold_all_deltas(): {folded:,} delta rows folded, {repriced:,} DailyRollup rows re-priced "
        f"in {out['fold_s']:.2f} s"
    )
    split = common.split_timings(timer, started, finished, _classify, _no_gap)
    out["split"] = split
    for name, seconds in split:
        if seconds >= 0.005:
            print(f"    {name:<55} {seconds:7.2f} s")
    if explain:
        common.note("auto_explain plans (EXPLAIN ANALYZE, BUFFERS) of statements over 100 ms:")
        common.print_plans(plans)

    if rebuild:
        window = raw_event_window()
        before = rollup_checksum(*window)
        common.checkpoint()
        started = time.perf_counter()
        rows = rebuild_from_events()
        out["rebuild_s"] = time.perf_counter() - started
        after = rollup_checksum(*window)
        out["rebuild_matches"] = before == after
        common.note(
            f"rebuild_from_events(): {rows:,} rows in {out['rebuild_s']:.1f} s; "
            f"rollups over {window[0]}…{window[1]} identical to the incremental ones: {before == after}"
        )
        if before != after:
            common.note(f"incremental (count, quantity, revenue, events) {before}")
            common.note(f"rebuilt                                       {after}")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rollup_fold", description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", default="1000000,10000000", help="Comma-separated history sizes.")
    parser.add_argument("--batch", type=int, default=100_000, help="New events before the fold (default 100,000).")
    parser.add_argument("--per-transaction", type=int, default=1000, help="Events per ingest_batch call.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-rebuild", action="store_true", help="Skip rebuild_from_events() at the largest size.")
    parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of the fold's statements.")
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-rebuild", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-json", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        result = run_one(
            args.child,
            rebuild=args.child_rebuild,
            batch=args.batch,
            per_transaction=args.per_transaction,
            seed=args.seed,
            explain=args.explain,
            tmpdir=args.tmpdir,
        )
        with open(args.result_json, "w") as handle:
            json.dump(result, handle, default=str)
        return 0

    sizes = sorted(int(s) for s in args.histories.split(",") if s.strip())
    largest = sizes[-1]
    summary = common.Summary(NAME)
    results: dict[int, dict] = {}
    for size in sizes:
        url = common.database_url() if size == largest else common.database_url(f"_{common.si(size)}")
        handle, result_path = tempfile.mkstemp(prefix="revops-bench-rollup-", suffix=".json")
        os.close(handle)
        cmd = [sys.executable, "-m", "bench.rollup_fold", "--child", str(size), "--result-json", result_path]
        cmd += ["--batch", str(args.batch), "--per-transaction", str(args.per_transaction), "--seed", str(args.seed)]
        if args.explain:
            cmd.append("--explain")
        if args.tmpdir:
            cmd += ["--tmpdir", args.tmpdir]
        if size == largest and not args.no_rebuild:
            cmd.append("--child-rebuild")
        env = {**os.environ, "BENCH_DATABASE_URL": url}
        code = subprocess.run(cmd, cwd=common.BASE_DIR, env=env, check=False).returncode
        try:
            if code != 0:
                raise RuntimeError(f"the {size:,}-event run exited with status {code}")
            with open(result_path) as handle:
                results[size] = json.load(handle)
        finally:
            os.unlink(result_path)

    for size in sizes:
        r = results[size]
        label = f"{common.si(size)} history"
        summary.check(
            f"fold after {args.batch:,} events, {label}",
            f"{r['fold_s']:.2f} s ({r['delta_rows']:,} deltas)",
            f"< {BUDGET_S:g} s",
            r["fold_s"] < BUDGET_S,
        )
        summary.info(f"  {label}: events / rollup rows", f"{r['events']:,} / {r['rollup_rows']:,}")
        for name, seconds in r["split"]:
            if seconds >= 0.1:
                summary.info(f"  {label}: {name}", f"{seconds:.2f} s")
        summary.info(f"  {label}: ingest of the batch", f"{r['ingest_s']:.1f} s")
    if len(sizes) > 1:
        small, big = results[sizes[0]]["fold_s"], results[largest]["fold_s"]
        summary.info(f"fold time {common.si(largest)} / {common.si(sizes[0])} history", f"{big / small:.2f}×")
    if "rebuild_s" in results[largest]:
        r = results[largest]
        summary.info(
            f"rebuild_from_events(), {common.si(largest)} history",
            f"{r['rebuild_s']:.1f} s (matches incremental: {'yes' if r['rebuild_matches'] else 'NO'})",
        )
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
