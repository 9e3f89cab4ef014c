"""Shared plumbing for the benchmarks: the database, Django set-up, timing and reporting.

Every benchmark runs against a PostgreSQL database of its own on the machine's server
(``revops_bench`` unless ``DATABASE_URL`` says otherwise), created and migrated by the
bench itself. Nothing here imports Django at module level: ``setup()`` configures the
environment first (``revops.settings.base`` with ``DEBUG=true``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/revops_bench"
# Redis database for the API benchmark's cache (the test suite uses 15 and just below it).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
BENCH_SECRET_KEY = "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105


# --- Databases --------------------------------------------------------------------------


def database_url(suffix: str = "") -> str:
    """The bench database's URL; ``suffix`` names a sibling database (``revops_bench_1m``)."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not suffix:
        return url
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "revops_bench"
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def create_database(url: str, *, drop_first: bool = False) -> None:
    """Create the database when missing (``drop_first``: start from an empty one)."""
    import psycopg
    from psycopg import sql

    name = database_name(url)
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        if drop_first:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def bench_env(url: str, **extra: str) -> dict[str, str]:
    """Environment for a bench process or a child it starts (manage.py, gunicorn)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="revops.settings.base",
        DEBUG="true",
        SECRET_KEY=BENCH_SECRET_KEY,
        DATABASE_URL=url,
        # Rollup folds are run (and timed) by the benchmarks themselves; the fold task an
        # ingest schedules on commit goes to an in-process queue nobody consumes instead
        # of .run/celery/ or a shared Redis.
        CELERY_BROKER_URL="memory://localhost/",
        CELERY_RESULT_BACKEND="cache+memory://",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


_setup_url: str | None = None


def setup(url: str | None = None, *, migrate: bool = True, env: dict[str, str] | None = None) -> str:
    """Point this process at ``url`` (created when missing), set Django up and migrate.

    ``env`` adds to or overrides ``bench_env``'s variables (a real broker instead of the
    in-process queue, a Redis of the bench's own).
    """
    global _setup_url
    url = url or database_url()
    if _setup_url is not None:
        assert url == _setup_url, "one database per bench process"
        return url
    os.environ.update({k: v for k, v in bench_env(url, **(env or {})).items() if k not in ("PYTHONUNBUFFERED",)})
    create_database(url)
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        note(f"database {database_name(url)} migrated ({time.perf_counter() - started:.1f} s)")
    _setup_url = url
    return url


def sql_one(sql: str, params: list | None = None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()


def sql_exec(sql: str, params: list | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def checkpoint() -> None:
    """Flush dirty buffers so a timed step does not pay for the previous one's writes."""
    sql_exec("CHECKPOINT")


def server_settings() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN"
            " ('shared_buffers', 'work_mem', 'max_wal_size', 'synchronous_commit', 'wal_level',"
            " 'max_parallel_workers_per_gather', 'temp_buffers', 'jit')"
            " ORDER BY name"
        )
        rows = cursor.fetchall()
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    shown = ", ".join(f"{n}={s}{u or ''}" for n, s, u in rows)
    return f"PostgreSQL {version}: {shown}"


def code_version() -> str:
    """The commit under test, and whether the code the benchmarks exercise has local edits."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=BASE_DIR, capture_output=True, text=True, check=False)
        return done.stdout.rstrip()

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "usage", "revops", "accounts")
    changed = [line[3:] for line in dirty.splitlines() if not line[3:].startswith("tests/")]
    return f"code: commit {head}" + (
        f", local changes in {', '.join(changed[:6])}" if changed else ", no local changes"
    )


def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


# --- Timing ------------------------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    start: float
    end: float
    rowcount: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class StatementTimer:
    """A Django ``execute_wrapper``: records every statement the real code runs, with times.

    Work between two statements (a COPY, Python, a side connection) shows up as the gap.
    """

    statements: list[Statement] = field(default_factory=list)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            cursor = context.get("cursor")
            rowcount = getattr(cursor, "rowcount", -1) if cursor is not None else -1
            self.statements.append(Statement(str(sql), started, time.perf_counter(), rowcount))

    @contextlib.contextmanager
    def installed(self) -> Iterator[StatementTimer]:
        from django.db import connection

        with connection.execute_wrapper(self):
            yield self


def split_timings(
    timer: StatementTimer,
    started: float,
    finished: float,
    classify: Callable[[str], str | None],
    gap_after: Callable[[str], str | None],
) -> list[tuple[str, float]]:
    """Attribute the wall time of one call to phases, in order of first appearance.

    ``classify(sql)`` names a statement's phase (None: "other statements");
    ``gap_after(sql)`` names the unhooked work that follows it (None: "Python / other").
    """
    phases: dict[str, float] = {}

    def add(name: str, seconds: float) -> None:
        phases[name] = phases.get(name, 0.0) + seconds

    previous_end, previous_sql = started, None
    for statement in timer.statements:
        gap = statement.start - previous_end
        if previous_sql is None:
            add("before the first statement (header, set-up)", gap)
        else:
            add(gap_after(previous_sql) or "Python / unhooked work between statements", gap)
        add(classify(statement.sql) or "other statements (SET, DDL, small look-ups)", statement.seconds)
        previous_end, previous_sql = statement.end, statement.sql
    add("after the last statement (COMMIT, on-commit hooks)", finished - previous_end)
    return list(phases.items())


@contextlib.contextmanager
def auto_explain(min_duration_ms: int = 1000, *, analyze: bool = True) -> Iterator[list[str]]:
    """Capture EXPLAIN (ANALYZE, BUFFERS) of slow statements as psycopg notices.

    Loads the contrib module auto_explain in this session (superuser) and has it report
    at NOTICE level, so the plans of the real code's statements reach us. ANALYZE adds
    per-node timing overhead: figures measured while this is on are inflated.
    """
    from django.db import connection

    plans: list[str] = []

    def on_notice(diag) -> None:
        message = diag.message_primary or ""
        if "plan:" in message or "duration:" in message:
            plans.append(message)

    connection.ensure_connection()
    pg = connection.connection
    pg.add_notice_handler(on_notice)
    settings = {
        "auto_explain.log_min_duration": f"{min_duration_ms}ms",
        "auto_explain.log_analyze": "on" if analyze else "off",
        "auto_explain.log_buffers": "on" if analyze else "off",
        "auto_explain.log_timing": "on" if analyze else "off",
        "auto_explain.log_nested_statements": "on",
        "auto_explain.log_level": "notice",
        "client_min_messages": "notice",
    }
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for name, value in settings.items():
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
    try:
        yield plans
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('auto_explain.log_min_duration', '-1', false)")
        pg.remove_notice_handler(on_notice)


def print_plans(plans: list[str], *, limit_lines: int = 400) -> None:
    for message in plans:
        lines = message.splitlines()
        print("    " + "\n    ".join(lines[:limit_lines]))
        if len(lines) > limit_lines:
            print(f"    … ({len(lines) - limit_lines} more plan lines)")
        print()


# --- Reporting ---------------------------------------------------------------------------


@dataclass
class Row:
    bench: str
    figure: str
    value: str
    budget: str = ""
    verdict: str = ""  # PASS, FAIL, info or CRASH


@dataclass
class Summary:
    bench: str
    rows: list[Row] = field(default_factory=list)

    def info(self, figure: str, value: str) -> None:
        self.rows.append(Row(self.bench, figure, value, "", "info"))

    def check(self, figure: str, value: str, budget: str, ok: bool) -> bool:
        self.rows.append(Row(self.bench, figure, value, budget, "PASS" if ok else "FAIL"))
        return ok

    def print(self) -> None:
        print_table(self.rows, title=f"{self.bench}: summary")

    def write_json(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps([asdict(row) for row in self.rows]))


def print_table(rows: list[Row], *, title: str) -> None:
    headers = ("benchmark", "figure", "value", "budget", "result")
    table = [(r.bench, r.figure, r.value, r.budget, r.verdict) for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in table]) for i, h in enumerate(headers)]
    rule = "-+-".join("-" * w for w in widths)
    print()
    print(f"== {title} ==")
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(rule)
    for row in table:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(flush=True)


def heading(text: str) -> None:
    print()
    print(f"### {text}", flush=True)


def note(text: str) -> None:
    print(f"  {text}", flush=True)


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def si(n: int) -> str:
    """1000000 → '1m', 100000 → '100k' (for database names and labels)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


class MachineCpu:
    """Busy share of the whole machine's CPU (all processes, ours and others') over an interval."""

    def __init__(self) -> None:
        self._start = self._sample()
        self._load = os.getloadavg()[0]

    @staticmethod
    def _sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def report(self) -> str:
        busy, total = self._sample()
        share = (busy - self._start[0]) / max(1, total - self._start[1])
        return (
            f"machine CPU busy {100 * share:.0f} % of {os.cpu_count()} cores during the step "
            f"(load average {self._load:.2f} → {os.getloadavg()[0]:.2f}; other sessions share this machine)"
        )


def install_exit_on_sigterm() -> None:
    """SIGTERM becomes SystemExit, so ``finally`` blocks (stopping servers) still run."""
    import signal

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def allow_test_client_host() -> None:
    """Add ``testserver`` (``django.test.Client``'s host) to ``ALLOWED_HOSTS`` before Django loads."""
    import os

    hosts = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
    os.environ["ALLOWED_HOSTS"] = ",".join(dict.fromkeys([*hosts, "testserver"]))
