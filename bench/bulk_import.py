"""Bulk CSV import with deduplication: ``usage.ingestion.csv_import.import_usage_stream`` on N events.

    python -m bench.bulk_import [--events 10000000] [--explain]

Generates a deterministic CSV (5,000 accounts, 6 meters, 60 days, ~1% duplicate ids,
0.02% unknown accounts) into a temporary file, measures the reference rate R (raw text
``COPY`` of the same file into a plain table of text columns, no indexes), empties the
usage tables, imports the file with the real function and reports events/s, the ratio to
R and where the time went (a Django ``execute_wrapper`` times every statement the import
runs; the COPY is the gap after the staging table is created). Then imports the same
file again: nothing is accepted.

Budget (issue): ≥ 150,000 events/s and ≥ 0.35 × R.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time

from bench import common
from bench.datagen import Population

NAME = "bulk_import"
BUDGET_RATE = 150_000
BUDGET_RATIO = 0.35

USAGE_TABLES = (
    "usage_event",
    "usage_eventkey",
    "usage_rollupdelta",
    "usage_dailyrollup",
    "usage_firstseen",
    "usage_quarantinedevent",
    "usage_importedusagefile",
)


def reset_usage_tables() -> None:
    """Empty every table the import writes (the reference data stays)."""
    from django.db import connection

    existing = [t for t in USAGE_TABLES if t in connection.introspection.table_names(include_views=False)]
    common.sql_exec(f"TRUNCATE {', '.join(existing)}")


def raw_copy(url: str, path: str, *, unlogged: bool) -> tuple[int, float]:
    """The reference: the file's bytes into a plain table of text columns with COPY."""
    import psycopg

    table = "bench_raw_copy"
    with open(path, "rb") as handle:
        columns = handle.readline().decode().strip().split(",")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE {table} ("
            + ", ".join(f"c{i} text" for i in range(len(columns)))
            + ")"
        )
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.cursor() as cursor, open(path, "rb") as handle:
            handle.readline()
            with cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    copy.write(chunk)
            rows = cursor.rowcount
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP TABLE {table}")
    return rows, elapsed


def _classify(sql: str) -> str | None:
    if "INSERT INTO usage_eventkey" in sql:
        return "store statement (dedupe keys, events, deltas, first-seen)"
    if "FROM _usage_stage" in sql and "reason" in sql:
        return "validation pass (one SQL scan of staging)"
    if "INSERT INTO usage_quarantinedevent" in sql:
        return "quarantine statement"
    if "SELECT count(*) FROM _usage_stage" in sql:
        return "count staged rows"
    if "date_trunc('month'" in sql:
        return "months scan for partitions"
    if "CREATE TEMP TABLE _usage_rows" in sql or "CREATE TEMP TABLE _usage_events" in sql:
        return "typed rows materialized (_usage_rows, _usage_events)"
    if "CREATE TEMP VIEW" in sql:
        return "other statements (SET, DDL, small look-ups)"
    return None


def _gap_after(sql: str) -> str | None:
    if "CREATE TEMP TABLE _usage_stage" in sql:
        return "COPY file into staging"
    if "date_trunc('month'" in sql:
        return "ensure_partitions (side connection)"
    return None


def timed_import(path: str, *, explain: bool = False) -> tuple[object, float, list[tuple[str, float]], list[str]]:
    from usage.ingestion.csv_import import import_usage_stream

    timer = common.StatementTimer()
    plans: list[str] = []
    with open(path, "rb") as stream:
        if explain:
            with common.auto_explain(1000) as plans, timer.installed():
                started = time.perf_counter()
                result = import_usage_stream(stream)
                finished = time.perf_counter()
        else:
            with timer.installed():
                started = time.perf_counter()
                result = import_usage_stream(stream)
                finished = time.perf_counter()
    split = common.split_timings(timer, started, finished, _classify, _gap_after)
    return result, finished - started, split, plans


def print_split(split: list[tuple[str, float]], total: float, rows: int) -> None:
    width = max(len(name) for name, _ in split)
    for name, seconds in split:
        if seconds < 0.005:
            continue
        print(
            f"    {name:<{width}}  {seconds:8.2f} s  {100 * seconds / total:5.1f} %  ({rows / seconds:,.0f} rows/s)"
            if seconds > 0.5
            else f"    {name:<{width}}  {seconds:8.2f} s  {100 * seconds / total:5.1f} %"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_import", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="CSV rows (default 10,000,000).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="Anchor day (default: today UTC).")
    parser.add_argument("--tmpdir", default=None, help="Where the CSV is written (default: the system's).")
    parser.add_argument("--keep-csv", action="store_true", help="Keep the generated CSV and print its path.")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="Print EXPLAIN ANALYZE of the import's slow statements (auto_explain; inflates the timings).",
    )
    parser.add_argument("--no-reimport", action="store_true", help="Skip the second import of the same file.")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = common.Summary(NAME)
    url = common.setup()
    as_of = args.as_of or dt.datetime.now(dt.UTC).date()
    common.heading(f"bulk CSV import: {args.events:,} events into {common.database_name(url)}")
    common.note(common.machine_line())
    common.note(common.code_version())
    common.note(common.server_settings())

    population = Population(args.seed)
    reset_usage_tables()
    created, meters = population.ensure_reference_data()
    common.note(f"reference data: {population.known:,} accounts ({created:,} created now), {meters} meters")

    handle, path = tempfile.mkstemp(prefix="revops-bench-", suffix=".csv", dir=args.tmpdir)
    os.close(handle)
    try:
        started = time.perf_counter()
        stats = population.write_csv(path, events=args.events, as_of=as_of)
        generated = time.perf_counter() - started
        common.note(
            f"generated {stats.rows:,} rows ({stats.bytes / 1e6:,.0f} MB) in {generated:.1f} s: "
            f"{stats.duplicates:,} duplicate ids, {stats.unknown:,} unknown-account events, "
            f"days {stats.first_day}…{stats.last_day}"
        )

        common.heading("reference: raw COPY of the same CSV into a plain table of text columns")
        cpu = common.MachineCpu()
        ref_rows, ref_s = raw_copy(url, path, unlogged=True)
        common.note(cpu.report())
        reference = ref_rows / ref_s
        common.note(f"UNLOGGED table: {ref_rows:,} rows in {ref_s:.2f} s = {reference:,.0f} rows/s  ← R")
        log_rows, log_s = raw_copy(url, path, unlogged=False)
        common.note(f"logged table:   {log_rows:,} rows in {log_s:.2f} s = {log_rows / log_s:,.0f} rows/s (info)")

        common.heading("import_usage_stream (first import: every event new)")
        common.checkpoint()
        cpu = common.MachineCpu()
        result, elapsed, split, plans = timed_import(path, explain=args.explain)
        common.note(cpu.report())
        events_rate = stats.rows / elapsed
        common.note(
            f"{result.rows:,} rows in {elapsed:.2f} s = {events_rate:,.0f} events/s "
            f"({result.accepted / elapsed:,.0f} accepted/s); ratio to R = {events_rate / reference:.3f}"
        )
        common.note(
            f"accepted {result.accepted:,} (expected {stats.expected_accepted:,}), duplicates {result.duplicates:,} "
            f"(expected {stats.duplicates:,}), quarantined {result.quarantined:,} (expected {stats.unknown:,})"
        )
        common.note("time split (statements timed by a connection execute_wrapper; gaps are unhooked work):")
        print_split(split, elapsed, stats.rows)
        if args.explain:
            common.note("auto_explain plans (EXPLAIN ANALYZE, BUFFERS) of statements over 1 s:")
            common.print_plans(plans)
        correct = (
            result.accepted == stats.expected_accepted
            and result.quarantined == stats.unknown
            and result.duplicates == stats.duplicates
        )

        summary.info("generated rows", f"{stats.rows:,} ({stats.bytes / 1e6:,.0f} MB, {generated:.0f} s)")
        summary.info("R: raw text COPY, unlogged", f"{reference:,.0f} rows/s")
        summary.info("raw text COPY, logged", f"{log_rows / log_s:,.0f} rows/s")
        summary.check(
            "import events/s",
            f"{events_rate:,.0f}/s ({elapsed:.1f} s)",
            f"≥ {BUDGET_RATE:,}/s",
            events_rate >= BUDGET_RATE,
        )
        summary.check(
            "import / R", f"{events_rate / reference:.3f}", f"≥ {BUDGET_RATIO}", events_rate / reference >= BUDGET_RATIO
        )
        summary.check("counts as expected", "yes" if correct else "NO", "exact", correct)
        for name, seconds in split:
            if seconds >= 0.05 * elapsed:
                summary.info(f"  split: {name}", f"{seconds:.1f} s ({100 * seconds / elapsed:.0f} %)")

        if not args.no_reimport:
            common.heading("import_usage_stream again: the same file")
            common.checkpoint()
            cpu = common.MachineCpu()
            again, again_s, again_split, _ = timed_import(path)
            common.note(cpu.report())
            short = getattr(again, "already_imported_on", None)
            common.note(
                f"{again.rows:,} rows in {again_s:.2f} s = {again.rows / again_s:,.0f} rows/s; "
                f"accepted {again.accepted:,}, duplicates {again.duplicates:,}, quarantined {again.quarantined:,}"
                + (f"; recognised as a file already imported on {short:%Y-%m-%d %H:%M:%S}" if short else "")
            )
            print_split(again_split, again_s, again.rows)
            summary.check("re-import same file: accepted", f"{again.accepted:,}", "0", again.accepted == 0)
            summary.info(
                "re-import same file: time",
                f"{again_s:.1f} s ({again.rows / again_s:,.0f} rows/s)" + (" [file checksum hit]" if short else ""),
            )

            # The same events in other bytes (a BOM in front, as spreadsheet exports write): the
            # file checksum differs, so every event goes through the dedupe keys.
            common.heading("import_usage_stream again: the same events in another file (UTF-8 BOM added)")
            bom_path = path + ".bom.csv"
            with open(path, "rb") as src, open(bom_path, "wb") as dst:
                dst.write(b"\xef\xbb\xbf")
                shutil.copyfileobj(src, dst, 1 << 20)
            try:
                common.checkpoint()
                cpu = common.MachineCpu()
                dup, dup_s, dup_split, _ = timed_import(bom_path)
                common.note(cpu.report())
            finally:
                os.unlink(bom_path)
            common.note(
                f"{dup.rows:,} rows in {dup_s:.2f} s = {dup.rows / dup_s:,.0f} rows/s; "
                f"accepted {dup.accepted:,}, duplicates {dup.duplicates:,}, quarantined {dup.quarantined:,}"
            )
            print_split(dup_split, dup_s, dup.rows)
            summary.check("re-import same events: accepted", f"{dup.accepted:,}", "0", dup.accepted == 0)
            summary.info("re-import same events: time", f"{dup_s:.1f} s ({dup.rows / dup_s:,.0f} rows/s)")
    finally:
        if args.keep_csv:
            common.note(f"CSV kept at {path}")
        else:
            os.unlink(path)

    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
