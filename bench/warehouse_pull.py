"""Warehouse pull of daily aggregates from a second PostgreSQL database (the warehouse).

    python -m bench.warehouse_pull [--rows 10000000] [--accounts 5000] [--meters 4]

The warehouse database (``revops_bench_wh_source``) gets a ``daily_usage`` table of
accounts × meters × days rows generated in SQL (untimed); the revops database
(``revops_bench_wh``) gets the accounts and meters. Timed, end to end through
``integrations.warehouse.services.pull_execute``: COPY out of the warehouse → COPY into
the staging table → SQL validation → aggregates and rollup deltas written, committed.
Then an incremental pull of one day (late rows re-stamped), and for reference a raw COPY
of the same rows between the two databases (no validation, no indexes) in the same run:
the pull's rate is also given as a ratio to it.

Budgets (issue): ≥ 100,000 rows/s for the full pull; < 2 s for a one-day incremental pull.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import common

NAME = "warehouse_pull"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse_pull", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--meters", type=int, default=4)
    parser.add_argument(
        "--incremental-runs",
        type=int,
        default=3,
        help="One-day incremental pulls timed (default 3; the budget is on the median).",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep both databases when a full pull of --rows is already stored: time the incremental pulls only.",
    )
    parser.add_argument("--summary-json", default=None)
    return parser.parse_args(argv)


def _fill_warehouse(wh_url: str, *, rows: int, accounts: int, meters: int) -> int:
    import psycopg

    days = max(1, rows // (accounts * meters))
    with psycopg.connect(wh_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS daily_usage")
        conn.execute(
            "CREATE TABLE daily_usage (customer text, metric text, usage_day date, total numeric, events bigint,"
            " updated_at timestamptz)"
        )
        conn.execute(
            """
            INSERT INTO daily_usage
            SELECT 'acct-' || a, 'meter-' || m, DATE '2025-06-01' + d, ((a * 7 + m * 13 + d) %% 1000) + 0.5,
                   (a + d) %% 50, TIMESTAMPTZ '2026-11-01 00:00:00+00' + d * interval '1 hour'
            FROM generate_series(1, %s) a, generate_series(1, %s) m, generate_series(0, %s - 1) d
            """,
            [accounts, meters, days],
        )
        conn.execute("VACUUM ANALYZE daily_usage")
        (count,) = conn.execute("SELECT count(*) FROM daily_usage").fetchone()
    return count


def _reusable(url: str, wh_url: str, rows: int) -> bool:
    """Both databases hold a finished full pull of ``rows`` rows (``--reuse``)."""
    import psycopg

    try:
        with psycopg.connect(wh_url) as wh, psycopg.connect(url) as rv:
            (stored,) = wh.execute("SELECT count(*) FROM daily_usage").fetchone()
            (pulled,) = rv.execute(
                "SELECT count(*) FROM usage_externaldailyaggregate WHERE source = 'bench warehouse'"
            ).fetchone()
    except psycopg.Error:
        return False
    return stored == pulled and stored >= rows * 0.99


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = common.Summary(NAME)
    url = common.database_url("_wh")
    wh_url = common.database_url("_wh_source")
    common.heading(f"Warehouse pull ({common.database_name(wh_url)} → {common.database_name(url)})")
    common.note(common.machine_line())
    common.note(common.code_version())
    if args.reuse and _reusable(url, wh_url, args.rows):
        common.setup(url)
        common.note("--reuse: the full pull is stored; timing the incremental pulls only")
        from integrations.models import WarehouseSource

        source = WarehouseSource.objects.get(name="bench warehouse")
    else:
        source = _full_pull(args, summary, url, wh_url)
    _incremental_pulls(args, summary, wh_url, source)
    summary.print()
    summary.write_json(args.summary_json)
    return 0


def _full_pull(args, summary, url: str, wh_url: str):
    common.create_database(url, drop_first=True)
    common.create_database(wh_url, drop_first=True)
    common.setup(url)

    from django.db import connection

    from accounts.models import Account, Segment
    from integrations.models import RunState
    from integrations.warehouse.services import pull_execute, pull_request, warehouse_source_save
    from usage.models import Meter, MeterTier

    started = time.perf_counter()
    rows = _fill_warehouse(wh_url, rows=args.rows, accounts=args.accounts, meters=args.meters)
    common.note(f"warehouse filled: {rows:,} rows ({time.perf_counter() - started:.0f} s, untimed)")
    Account.objects.bulk_create(
        Account(external_id=f"acct-{i}", name=f"Account {i}", segment=Segment.MID_MARKET)
        for i in range(1, args.accounts + 1)
    )
    for m in range(1, args.meters + 1):
        meter = Meter.objects.create(key=f"meter-{m}", name=f"Meter {m}", unit="unit")
        MeterTier.objects.create(meter=meter, up_to=None, unit_price="0.01")

    # The reference: the same rows COPYed raw between the two databases into a bare table,
    # handed on in blocks the way the pull does (integrations.warehouse.sources.copy_out_chunks).
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from integrations.warehouse.sources import Select, copy_out_chunks

    engine = create_engine(wh_url.replace("postgres://", "postgresql+psycopg://"), poolclass=NullPool)
    with engine.connect() as wh, connection.cursor() as cursor:
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_raw (customer text, metric text, usage_day text, total text, events text,"
            " updated_at text)"
        )
        begun = time.perf_counter()
        with cursor.copy("COPY bench_raw FROM STDIN") as into:
            for chunk in copy_out_chunks(wh, Select("SELECT * FROM daily_usage", {}, [])):
                into.write(chunk)
        raw_s = time.perf_counter() - begun
        cursor.execute("DROP TABLE bench_raw")
    raw_rate = rows / raw_s
    common.note(f"raw COPY warehouse → revops: {raw_s:.1f} s, {raw_rate:,.0f} rows/s (the reference R)")
    common.checkpoint()

    source = warehouse_source_save(
        name="bench warehouse",
        url=wh_url.replace("postgres://", "postgresql+psycopg://"),
        mode="aggregates",
        query="",
        table="daily_usage",
        mapping={
            "account": "customer",
            "meter": "metric",
            "day": "usage_day",
            "quantity": "total",
            "event_count": "events",
        },
        cursor_column="updated_at",
        cursor_kind="timestamp",
        lookback=0,
        schedule_minutes=0,
    )
    begun = time.perf_counter()
    run = pull_execute(pull_request(source=source).pk)
    full_s = time.perf_counter() - begun
    assert run.state == RunState.SUCCEEDED, run.error
    full_rate = run.rows / full_s
    common.note(f"full pull: {run.rows:,} rows in {full_s:.1f} s, {full_rate:,.0f} rows/s, counts {run.counts}")
    summary.check(
        f"full pull, {run.rows:,} daily-aggregate rows",
        f"{full_rate:,.0f} rows/s ({full_s:.0f} s; {full_rate / raw_rate:.2f} × raw COPY)",
        "≥ 100,000 rows/s",
        full_rate >= 100_000 and run.counts["created"] == rows,
    )
    summary.info("raw COPY between the databases (R)", f"{raw_rate:,.0f} rows/s ({raw_s:.1f} s)")
    return source


def _incremental_pulls(args, summary, wh_url: str, source) -> None:
    """One day of late corrections: the newest day's rows re-stamped after the cursor and
    pulled, ``--incremental-runs`` times; the statements of the first run are listed."""
    import statistics

    import psycopg

    from integrations.models import RunState
    from integrations.warehouse.services import pull_execute, pull_request

    times: list[float] = []
    for attempt in range(args.incremental_runs):
        with psycopg.connect(wh_url, autocommit=True) as wh:
            (last_day,) = wh.execute("SELECT max(usage_day) FROM daily_usage").fetchone()
            wh.execute(
                "UPDATE daily_usage SET total = total + 1, updated_at = clock_timestamp() WHERE usage_day = %s",
                [last_day],
            )
        source.refresh_from_db()
        pull_id = pull_request(source=source).pk
        timer = common.StatementTimer()
        begun = time.perf_counter()
        with timer.installed():
            run = pull_execute(pull_id)
        inc_s = time.perf_counter() - begun
        assert run.state == RunState.SUCCEEDED, run.error
        times.append(inc_s)
        common.note(f"incremental pull {attempt + 1}: {run.rows:,} rows in {inc_s:.2f} s, counts {run.counts}")
        if attempt == 0:
            in_statements = sum(statement.seconds for statement in timer.statements)
            common.note(
                f"    {len(timer.statements)} statements {in_statements * 1000:.0f} ms; outside them (the COPY from"
                f" the warehouse, Python) {(inc_s - in_statements) * 1000:.0f} ms; the slowest:"
            )
            for statement in sorted(timer.statements, key=lambda s: s.seconds, reverse=True)[:6]:
                text = " ".join(statement.sql.split())[:110]
                common.note(f"    {statement.seconds * 1000:7.0f} ms  {text}")
        replaced_ok = run.counts["replaced"] == args.accounts * args.meters
    median = statistics.median(times)
    summary.check(
        f"incremental pull of one day ({run.rows:,} rows replaced), median of {len(times)}",
        f"{median:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})",
        "< 2 s",
        median < 2 and replaced_ok,
    )


if __name__ == "__main__":
    sys.exit(main())
