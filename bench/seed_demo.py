"""``manage.py seed_demo`` on an empty database, timed from the outside.

    python -m bench.seed_demo

Drops and re-creates the database ``<bench database>_seed`` (``revops_bench_seed``),
migrates it (untimed), then runs ``manage.py seed_demo`` as a child process, exactly as
``make run`` does on first start, and times the whole command (Python start-up and
Django set-up included).

Budget (issue): < 60 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import common

NAME = "seed_demo"
BUDGET_S = 60.0


def _statement_kind(sql: str) -> str:
    text = " ".join(sql.split())
    for marker, name in (
        ("LATERAL (VALUES", "usage import: validation pass"),
        ("INSERT INTO usage_eventkey", "usage import: store statement"),
        ("INSERT INTO usage_quarantinedevent", "usage import: quarantine"),
        ("date_trunc('month', occurred_at", "usage import: months scan"),
        ("CREATE TEMP TABLE _usage_rows", "usage import: typed rows materialized"),
        ("claimed AS", "rollup fold statement"),
        ("WITH tiers AS", "rollup re-price"),
    ):
        if marker in text:
            return name
    words = text.split()
    verb = words[0].upper() if words else "?"
    table = next((w.strip('"') for w in words[1:8] if w.strip('"').split("_")[0] in _APPS), "")
    return f"other {verb} {table}".strip()


_APPS = {"accounts", "usage", "revops", "comp", "forecasting", "pghistory", "auth", "mfa", "account"}


def split_in_process(url: str, env: dict[str, str], extra: list[str]) -> list[tuple[str, float]]:
    """seed_demo again, in this process on a fresh database, with every statement timed."""
    common.heading("where seed_demo's time goes (in-process re-run, statements timed)")
    common.create_database(url, drop_first=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=common.BASE_DIR, env=env, check=True
    )
    common.setup(url, migrate=False)
    from django.core.management import call_command

    timer = common.StatementTimer()
    with timer.installed():
        started = time.perf_counter()
        call_command("seed_demo", *extra)
        total = time.perf_counter() - started
    by_kind: dict[str, float] = {}
    for statement in timer.statements:
        kind = _statement_kind(statement.sql)
        by_kind[kind] = by_kind.get(kind, 0.0) + statement.seconds
    in_sql = sum(s.seconds for s in timer.statements)
    copy_gap = 0.0
    for previous, statement in zip(timer.statements, timer.statements[1:], strict=False):
        if "CREATE TEMP TABLE _usage_stage" in previous.sql:
            copy_gap = statement.start - previous.end
    rows = sorted(by_kind.items(), key=lambda kv: -kv[1])[:10]
    rows.append(("usage import: COPY of the generated CSV (includes generating it)", copy_gap))
    rows.append(("Python outside statements (planning, ORM objects, the rest)", total - in_sql - copy_gap))
    common.note(f"in-process seed_demo: {total:.1f} s, {len(timer.statements):,} statements, {in_sql:.1f} s in them")
    for name, seconds in rows:
        print(f"    {name:<70} {seconds:7.2f} s")
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.seed_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--split",
        action="store_true",
        help="Afterwards, run seed_demo again in-process on a fresh database with every statement timed.",
    )
    parser.add_argument("extra", nargs="*", help="Extra arguments for seed_demo (after --).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = common.Summary(NAME)
    url = common.database_url("_seed")
    common.heading(f"manage.py seed_demo on an empty database ({common.database_name(url)})")
    common.note(common.machine_line())
    common.note(common.code_version())
    common.create_database(url, drop_first=True)
    env = common.bench_env(url)
    python = sys.executable
    started = time.perf_counter()
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=common.BASE_DIR, env=env, check=True)
    common.note(f"migrated in {time.perf_counter() - started:.1f} s (untimed)")

    cmd = [python, "manage.py", "seed_demo", *args.extra]
    common.note("running: " + " ".join(["manage.py", *cmd[2:]]))
    cpu = common.MachineCpu()
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=common.BASE_DIR, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    common.note(cpu.report())
    for line in (done.stdout + done.stderr).strip().splitlines():
        print(f"    | {line}")
    if done.returncode != 0:
        raise RuntimeError(f"seed_demo exited with status {done.returncode}")
    common.note(f"seed_demo took {elapsed:.1f} s (wall clock, whole command)")

    summary.check("manage.py seed_demo, empty database", f"{elapsed:.1f} s", f"< {BUDGET_S:g} s", elapsed < BUDGET_S)
    if args.split:
        for name, seconds in split_in_process(url, env, args.extra):
            summary.info(f"  split: {name}", f"{seconds:.1f} s")
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
