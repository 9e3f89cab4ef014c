"""``python -m bench`` (``make bench``): every benchmark in turn, then one summary table.

Each benchmark runs as its own process (``python -m bench.<name>``), so one that crashes
does not stop the others. Exit status 0 unless a benchmark crashed: a missed budget is
reported as FAIL, never as an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench import common

# bulk_import leaves the 10M-event database that rollup_fold reuses; api_ingest runs on it after.
# metrics_refresh, comp_run and forecast_run generate their own databases (revops_bench_metrics,
# revops_bench_comp, revops_bench_forecast; whatif reuses comp_run's, planning_pages metrics_refresh's);
# faults drops and re-creates revops_bench_faults.
BENCHES = (
    "bulk_import",
    "rollup_fold",
    "api_ingest",
    "seed_demo",
    "metrics_refresh",
    "comp_run",
    "whatif",
    "forecast_run",
    "faults",
    "crm_sync",
    "warehouse_pull",
    "page_weight",
    "planning_pages",
    "exports_day",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help=f"Comma-separated subset of {', '.join(BENCHES)}.")
    parser.add_argument("--skip", default="", help="Comma-separated benchmarks to leave out.")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="bulk_import: CSV rows (default 10,000,000); faults: events sent (default 1,000,000).",
    )
    parser.add_argument("--histories", default=None, help="rollup_fold: history sizes (default 1000000,10000000).")
    parser.add_argument("--duration", type=float, default=None, help="api_ingest: measured seconds (default 30).")
    parser.add_argument(
        "--reuse-metrics",
        action="store_true",
        help="metrics_refresh: keep revops_bench_metrics when it already holds the generated data.",
    )
    parser.add_argument(
        "--reuse-comp",
        action="store_true",
        help="comp_run: keep revops_bench_comp when it already holds the generated data.",
    )
    parser.add_argument(
        "--reuse-forecast",
        action="store_true",
        help="forecast_run: keep revops_bench_forecast when it already holds the generated data.",
    )
    args = parser.parse_args(argv)

    only = [n for n in args.only.split(",") if n]
    skip = {n for n in args.skip.split(",") if n}
    unknown = (set(only) | skip) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    names = [n for n in BENCHES if (not only or n in only) and n not in skip]
    extra = {
        "bulk_import": ["--events", str(args.events)] if args.events else [],
        "rollup_fold": ["--histories", args.histories] if args.histories else [],
        "api_ingest": ["--duration", str(args.duration)] if args.duration else [],
        "seed_demo": [],
        "metrics_refresh": ["--reuse"] if args.reuse_metrics else [],
        "comp_run": ["--reuse"] if args.reuse_comp else [],
        "whatif": ["--reuse"],  # comp_run (just before it) leaves its company and ledger
        "forecast_run": ["--reuse"] if args.reuse_forecast else [],
        "faults": ["--events", str(args.events)] if args.events else [],
        "crm_sync": [],
        "warehouse_pull": [],
        "page_weight": [],
        "planning_pages": ["--reuse"],  # metrics_refresh leaves its company
        "exports_day": ["--reuse"],  # the same company, with the metrics it computed
    }

    rows: list[common.Row] = []
    crashed = []
    started = time.perf_counter()
    for name in names:
        handle, summary_path = tempfile.mkstemp(prefix=f"revops-bench-{name}-", suffix=".json")
        os.close(handle)
        try:
            begun = time.perf_counter()
            code = subprocess.run(
                [sys.executable, "-m", f"bench.{name}", *extra[name], "--summary-json", summary_path],
                cwd=common.BASE_DIR,
                check=False,
            ).returncode
            took = time.perf_counter() - begun
            with open(summary_path) as handle:
                text = handle.read().strip()
            if code == 0 and text:
                rows += [common.Row(**row) for row in json.loads(text)]
                rows.append(common.Row(name, "benchmark wall time", f"{took:.0f} s", "", "info"))
            else:
                crashed.append(name)
                rows.append(common.Row(name, f"crashed (exit status {code})", "", "", "CRASH"))
        finally:
            os.unlink(summary_path)

    common.print_table(rows, title=f"all benchmarks ({time.perf_counter() - started:.0f} s)")
    failed = sorted({r.bench for r in rows if r.verdict == "FAIL"})
    passed = [n for n in names if n not in failed and n not in crashed]
    print(f"PASS: {', '.join(passed) or '-'}   FAIL: {', '.join(failed) or '-'}   CRASH: {', '.join(crashed) or '-'}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
