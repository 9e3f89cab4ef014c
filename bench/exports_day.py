"""BI exports: how long a day's partitions take to write, on the 5,000-account company.

    python -m bench.exports_day [--days 7] [--reuse]

On ``bench.metrics_data``'s company in ``revops_bench_metrics`` (5,000 accounts × 6 meters,
~13M daily rollups; ``--reuse`` keeps it), writes the last ``--days`` days of the rollups
table (≈ 30,000 rows a day) and of the account metrics (when the metrics benchmark has
computed them) as CSV + Parquet partitions to a temporary folder through
``exports.services.export_partition`` — the code path of a nightly run — and reports rows,
bytes and rows/s per table, and the time of one day (the nightly run's unit of work).
Each written partition is read back with pyarrow and its row count compared with the
manifest's.

There is no budget in the issue for exports; the figure says what a nightly run costs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import common, metrics_data

NAME = "exports_day"


def run(args: argparse.Namespace, summary: common.Summary) -> None:
    import pyarrow.parquet as pq

    from exports.selectors import TABLES
    from exports.services import export_partition, partition_dir
    from exports.storage import destination_parse, store_for

    last = common.sql_one("SELECT max(day) FROM usage_dailyrollup")[0]
    days = [last - dt.timedelta(days=k) for k in range(args.days)][::-1]
    with tempfile.TemporaryDirectory(prefix="revops-bench-exports-") as root:
        store = store_for(destination_parse(f"file://{root}/out"), {})
        spool = Path(root) / "spool"
        spool.mkdir()
        for name in ("rollups", "account_metrics"):
            table = TABLES[name]
            common.heading(f"{name}: {len(days)} days to {last}, CSV + Parquet")
            rows = size = 0
            per_day: list[float] = []
            for day in days:
                started = time.perf_counter()
                result = export_partition(store=store, table=table, day=day, formats=["csv", "parquet"], spool=spool)
                per_day.append(time.perf_counter() - started)
                rows += result.rows
                size += sum(f["bytes"] for f in result.files.values())
                folder = Path(root) / "out" / partition_dir(name, day)
                manifest = json.loads((folder / "_manifest.json").read_text())
                parquet_rows = pq.read_metadata(folder / "part-0000.parquet").num_rows
                if not (manifest["rows"] == parquet_rows == result.rows):
                    raise RuntimeError(f"{name} {day}: manifest {manifest['rows']}, parquet {parquet_rows}")
            total = sum(per_day)
            common.note(f"{rows:,} rows, {size / 1e6:.1f} MB in {total:.2f} s; slowest day {max(per_day):.2f} s")
            if rows == 0:
                summary.info(f"{name}: {len(days)} days", "no rows (run bench.metrics_refresh first for metrics)")
                continue
            summary.info(
                f"{name}: {len(days)} days, CSV + Parquet",
                f"{rows:,} rows ({rows // len(days):,} a day), {size / 1e6:.1f} MB, {total:.1f} s = "
                f"{rows / total:,.0f} rows/s; one day {total / len(days):.2f} s (slowest {max(per_day):.2f} s)",
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exports_day", description=__doc__.split("\n\n")[0])
    metrics_data.add_data_arguments(parser)
    parser.add_argument("--days", type=int, default=7, help="Days to export (default 7).")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common.install_exit_on_sigterm()
    summary = common.Summary(NAME)
    metrics_data.prepare_database(args)
    common.note(common.code_version())
    run(args, summary)
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
