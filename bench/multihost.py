"""The nightly jobs on Celery workers on several hosts: the same rows as on one, and the wall time.

    python -m bench.multihost [--accounts 2000] [--months 12] [--people 100] [--hosts 3] [--shards 6]

Needs root (network namespaces, ``bench.netns``). Makes ``--hosts`` worker hosts, each a
network namespace with a veth link, and a PostgreSQL cluster and a Redis of its own that
listen on the links' gateway addresses (and 127.0.0.1), so every query and every message
of a worker crosses its host's link. Then:

1. seeds ``multihost_seed``: ``bench.metrics_data``'s company (``--accounts`` accounts,
   ``--months`` months of daily rollups to ``--as-of``, ``--people`` people) and
   ``bench.comp_run``'s plans, assignments, quotas and FirstSeen rows (a child process);
2. for 1 host and then ``--hosts`` hosts: copies the seed into ``multihost_<n>``
   (``CREATE DATABASE … TEMPLATE``: the same inputs, no outputs), starts one
   ``celery worker`` (prefork, concurrency 1; ``forecasting.services`` and statsmodels
   imported before the pool forks, as in a worker that has been up a while) per host
   inside its namespace, waits until each answers a ping, sends from
   this (the root) namespace ``usage.tasks.refresh_metrics(as_of)``,
   ``comp.tasks.run_comp_monthly(<month before as_of>)`` and
   ``forecasting.tasks.run_forecasts_nightly(<day before as_of>, shards)``, and waits for
   the three and every forecast shard: the wall time from the first send to the last
   shard finished. Meanwhile ``pg_stat_activity`` is sampled (the address each worker's
   connections come from, what their active queries wait on) and the workers' CPU time
   is measured; afterwards each worker's log says which tasks it ran and for how long;
3. compares every output table of the two databases row for row (ids, timestamps and
   timings left out; a reference to another output row is replaced by that row).

``run_scenario`` is the scenario; ``tests/scale/test_multihost.py`` runs it on 300
accounts and 6 months.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench import common
from bench.netns import Host, Postgres, Redis, worker_hosts

NAME = "multihost"
SEED_DATABASE = "multihost_seed"
CELERY_BIN = Path(sys.executable).with_name("celery")
CACHE_DB, BROKER_DB = 0, 1
REFRESH_TASK = "usage.tasks.refresh_metrics"
COMP_TASK = "comp.tasks.run_comp_monthly"
NIGHTLY_TASK = "forecasting.tasks.run_forecasts_nightly"
SHARD_TASK = "forecasting.tasks.run_forecast_shard"
WORKER_START_TIMEOUT_S = 90.0
WARM_IMPORTS = "forecasting.services,statsmodels.tsa.holtwinters"
# What the jobs write. A column that references one of these is compared as the row it names.
OUTPUT_TABLES = (
    "usage_metricsrefresh",
    "usage_accountmetrics",
    "usage_portfoliometrics",
    "usage_alert",
    "usage_alertevent",
    "comp_comprun",
    "comp_ledgerline",
    "comp_statement",
    "comp_attainment",
    "forecasting_forecastrun",
    "forecasting_accountforecast",
    "forecasting_forecastpoint",
)
# Left out of the comparison besides ids and timestamps: how long something took.
TIMING_COLUMNS = {"seconds"}
SUCCEEDED = re.compile(r"Task (?P<name>[\w.]+)\[(?P<id>[0-9a-f-]+)\] succeeded in (?P<s>[\d.]+)s: (?P<result>.*)$")


@dataclass(frozen=True)
class Config:
    accounts: int = 300
    months: int = 6
    people: int = 38
    as_of: dt.date = dt.date(2026, 11, 20)  # the metrics day; the rollups end the day before
    seed: int = 7
    first_seen: int = 60
    shards: int = 6
    hosts: int = 3
    timeout_s: float = 600.0

    @property
    def forecast_as_of(self) -> dt.date:
        return self.as_of - dt.timedelta(days=1)  # the last day of actuals

    @property
    def comp_period(self) -> str:
        return f"{(self.as_of.replace(day=1) - dt.timedelta(days=1)):%Y-%m}"


@dataclass
class Run:
    """One pass: ``hosts`` worker hosts on database ``database``."""

    hosts: int
    database: str
    wall_s: float = 0.0
    ran_on: dict[str, str] = field(default_factory=dict)  # "refresh", "comp", "nightly", "shard 0" → "h1"
    task_s: dict[str, float] = field(default_factory=dict)  # the same labels → seconds, as the worker logged
    client_addrs: dict[str, set[str]] = field(default_factory=dict)  # worker → addresses its DB connections came from
    db_activity: Counter = field(default_factory=Counter)  # samples of active worker queries: "CPU" or the wait
    worker_cpu_s: float = 0.0  # CPU time of the workers' processes (pool children included) during the jobs
    broker_addrs: set[str] = field(default_factory=set)  # the addresses of Redis's clients
    results: dict[str, object] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)


@dataclass
class Result:
    seed_s: float
    runs: list[Run]
    hosts: list[Host]
    rows: dict[str, int]  # table → rows (the one-host run's)
    differences: dict[str, str]  # table → what differs (empty: identical)


# --- Seed (a child process: Django is set up on the seed database) --------------------------


def seed(url: str, config: Config, redis_url: str) -> None:
    """Migrate ``url``, generate the metrics company and the comp set-up into it."""
    from bench import comp_run, metrics_data

    common.setup(url, env={"REDIS_URL": redis_url})
    metrics_data.generate(
        accounts=config.accounts, months=config.months, as_of=config.as_of, seed=config.seed, people=config.people
    )
    args = argparse.Namespace(seed=config.seed, as_of=config.as_of, months=config.months, first_seen=config.first_seen)
    comp_run.set_up_comp(args, comp_run.months_of(args), common.Summary(NAME))


def _seed_in_child(url: str, config: Config, redis_url: str, env: dict[str, str], log: Callable[[str], None]) -> None:
    argv = [sys.executable, "-m", "bench.multihost", "--seed-into", url, "--redis-url", redis_url]
    argv += ["--accounts", str(config.accounts), "--months", str(config.months), "--people", str(config.people)]
    argv += ["--as-of", config.as_of.isoformat(), "--seed", str(config.seed), "--first-seen", str(config.first_seen)]
    child_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(argv, cwd=common.BASE_DIR, env=child_env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        log(f"  seed: {line.strip()}")
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")


# --- One pass ----------------------------------------------------------------------------------


def _client(broker_url: str):
    from celery import Celery

    client = Celery(f"{NAME}-client", set_as_current=False)
    client.conf.update(
        broker_url=broker_url,
        result_backend=broker_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        timezone="UTC",
        enable_utc=True,
    )
    return client


def _worker_env(env: dict[str, str], host: Host, pg: Postgres, redis: Redis, database: str) -> dict[str, str]:
    broker = redis.url(BROKER_DB, via=host.gateway)
    return {
        **env,
        "DATABASE_URL": pg.url(database, via=host.gateway),
        "PGAPPNAME": f"h{host.index}",  # libpq's: pg_stat_activity tells the workers apart
        "REDIS_URL": redis.url(CACHE_DB, via=host.gateway),
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "PYTHONUNBUFFERED": "1",
    }


class _ActivitySampler(threading.Thread):
    """Every 100 ms, the workers' connections to ``database``: (application_name,
    client_addr) of each, and what the active ones were doing (CPU, or a wait event)."""

    def __init__(self, admin_url: str, database: str) -> None:
        super().__init__(daemon=True)
        self.admin_url, self.database = admin_url, database
        self.seen: set[tuple[str, str]] = set()
        self.doing: Counter = Counter()
        self.stopping = threading.Event()

    def sample(self, conn) -> None:
        rows = conn.execute(
            "SELECT application_name, host(client_addr), state,"
            " coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity"
            " WHERE datname = %s AND application_name LIKE 'h%%' AND client_addr IS NOT NULL",
            [self.database],
        ).fetchall()
        self.seen.update((name, addr) for name, addr, _state, _wait in rows)
        self.doing.update(wait for _name, _addr, state, wait in rows if state == "active")

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self.stopping.wait(0.1):
                self.sample(conn)
            self.sample(conn)


def _wait_for_workers(client, names: list[str], processes: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while True:
        for process, path in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with {process.returncode}:\n{path.read_text(errors='replace')}")
        answered = {name for reply in client.control.ping(destination=names, timeout=1.0) for name in reply}
        if answered >= set(names):
            return
        if time.monotonic() > deadline:
            tails = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)
            raise RuntimeError(f"workers {sorted(set(names) - answered)} did not answer a ping:\n{tails}")


def _cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """User + system CPU seconds of the workers and their pool processes so far."""
    import psutil

    total = 0.0
    for process in processes:
        parent = psutil.Process(process.pid)
        for each in [parent, *parent.children(recursive=True)]:
            times = each.cpu_times()
            total += times.user + times.system
    return total


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()  # warm shutdown
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _where_tasks_ran(logs: list[Path], hosts: list[Host]) -> tuple[dict[str, str], dict[str, float]]:
    """Each worker's log lists the tasks it finished: "refresh", "comp", "nightly", "shard <i>"
    → "h<i>", and → the seconds each took."""
    labels = {REFRESH_TASK: "refresh", COMP_TASK: "comp", NIGHTLY_TASK: "nightly"}
    ran_on: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for path, host in zip(logs, hosts, strict=True):
        for line in path.read_text(errors="replace").splitlines():
            match = SUCCEEDED.search(line)
            if not match:
                continue
            name = match.group("name")
            if name == SHARD_TASK:
                shard = re.search(r"'shard': (\d+)", match.group("result"))
                label = f"shard {shard.group(1) if shard else '?'}"
            elif name in labels:
                label = labels[name]
            else:
                continue
            if label in ran_on:
                raise RuntimeError(f"{label} finished twice: on {ran_on[label]} and h{host.index}")
            ran_on[label] = f"h{host.index}"
            seconds[label] = float(match.group("s"))
    return ran_on, seconds


def run_once(
    *,
    hosts: list[Host],
    pg: Postgres,
    redis: Redis,
    database: str,
    config: Config,
    env: dict[str, str],
    workdir: Path,
    log: Callable[[str], None],
) -> Run:
    """Copy the seed into ``database``, run the jobs on ``hosts``' workers, time them."""
    import psycopg
    import redis as redis_client
    from psycopg import sql

    begun = time.perf_counter()
    run = Run(hosts=len(hosts), database=database)
    with psycopg.connect(pg.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database), sql.Identifier(SEED_DATABASE))
        )
    flusher = redis_client.Redis.from_url(redis.url(0))
    flusher.flushall()
    client = _client(redis.url(BROKER_DB))
    processes: list[subprocess.Popen] = []
    names = [f"h{host.index}@{NAME}" for host in hosts]
    sampler = _ActivitySampler(pg.url("postgres"), database)
    try:
        for host, name in zip(hosts, names, strict=True):
            path = workdir / f"worker-{len(hosts)}-h{host.index}.log"
            run.logs.append(path)
            command = [str(CELERY_BIN), "-A", "revops", "worker", "--pool", "prefork", "--concurrency", "1"]
            command += ["--loglevel", "INFO", "--hostname", name, "--queues", "celery", "--without-mingle"]
            # Imported once by the worker before it forks its pool, as a long-lived worker
            # has: otherwise each host's first shard pays seconds of imports inside the timing.
            command += ["--without-gossip", "--include", WARM_IMPORTS]
            with path.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        host.argv(command),
                        cwd=common.BASE_DIR,
                        env=_worker_env(env, host, pg, redis, database),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        _wait_for_workers(client, names, processes, run.logs)
        log(f"{len(hosts)} worker{'s' if len(hosts) > 1 else ''} up in {time.perf_counter() - begun:.1f} s")
        sampler.start()
        cpu_before = _cpu_seconds(processes)
        with psycopg.connect(pg.url(database), autocommit=True) as conn:
            started = time.perf_counter()
            sent = {
                "refresh": client.send_task(REFRESH_TASK, args=[config.as_of.isoformat()]),
                "comp": client.send_task(COMP_TASK, args=[config.comp_period]),
                "nightly": client.send_task(NIGHTLY_TASK, args=[config.forecast_as_of.isoformat(), config.shards]),
            }
            deadline = time.monotonic() + config.timeout_s
            for label, result in sent.items():
                run.results[label] = result.get(timeout=max(1.0, deadline - time.monotonic()))
            while True:
                finished = conn.execute(
                    "SELECT count(*) FROM forecasting_forecastrun"
                    " WHERE as_of = %s AND shards = %s AND finished_at IS NOT NULL",
                    [config.forecast_as_of, config.shards],
                ).fetchone()[0]
                if finished >= config.shards:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{finished} of {config.shards} forecast shards finished in {config.timeout_s} s"
                    )
                time.sleep(0.05)
            run.wall_s = time.perf_counter() - started
        run.worker_cpu_s = _cpu_seconds(processes) - cpu_before
        run.broker_addrs = {
            str(client_info["addr"]).rsplit(":", 1)[0]
            for client_info in flusher.client_list()
            if client_info.get("addr")
        }
    finally:
        sampler.stopping.set()
        if sampler.is_alive():
            sampler.join(timeout=5)
        _stop(processes)
        client.close()
        flusher.close()
    run.db_activity = sampler.doing
    for name, addr in sampler.seen:
        run.client_addrs.setdefault(name, set()).add(addr)
    run.ran_on, run.task_s = _where_tasks_ran(run.logs, hosts)
    log(
        f"{len(hosts)} host{'s' if len(hosts) > 1 else ''}: {run.wall_s:.2f} s; ran on "
        + ", ".join(f"{label} {host} ({run.task_s[label]:.1f} s)" for label, host in sorted(run.ran_on.items()))
        + f"; workers' CPU {run.worker_cpu_s:.1f} s; their active queries sampled: "
        + ", ".join(f"{what} {n}" for what, n in run.db_activity.most_common(4))
    )
    return run


# --- Comparison ----------------------------------------------------------------------------


def _canonical(value: object) -> object:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def table_rows(url: str) -> dict[str, Counter]:
    """Every output table as a multiset of rows without ids, timestamps and timings; a
    reference to another output table's row is replaced by that row."""
    import psycopg

    canonical: dict[str, dict[int, tuple]] = {}  # table → id → row, for the references
    tables: dict[str, Counter] = {}
    with psycopg.connect(url) as conn:
        references = {
            (table, column): target
            for table, column, target in conn.execute(
                """
                SELECT src.relname, att.attname, dst.relname
                FROM pg_constraint con
                JOIN pg_class src ON src.oid = con.conrelid
                JOIN pg_class dst ON dst.oid = con.confrelid
                JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = ANY (con.conkey)
                WHERE con.contype = 'f'
                """
            ).fetchall()
        }
        for table in OUTPUT_TABLES:  # referenced tables come before the tables that reference them
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                [table],
            ).fetchall()
            kept = [
                name
                for name, kind in columns
                if name != "id" and not kind.startswith("timestamp") and name not in TIMING_COLUMNS
            ]
            canonical[table] = {}
            rows: Counter = Counter()
            cursor = conn.execute(f'SELECT id, {", ".join(kept)} FROM "{table}"')  # noqa: S608 - names from the catalog
            for pk, *values in cursor:
                row = []
                for name, value in zip(kept, values, strict=True):
                    target = references.get((table, name))
                    if target in canonical and value is not None:
                        value = canonical[target][value]
                    row.append((name, _canonical(value)))
                canonical[table][pk] = tuple(row)
                rows[tuple(row)] += 1
            tables[table] = rows
    return tables


def differences(one: dict[str, Counter], other: dict[str, Counter]) -> dict[str, str]:
    out = {}
    for table in OUTPUT_TABLES:
        missing, extra = one[table] - other[table], other[table] - one[table]
        if missing or extra:
            sample = next(iter(missing or extra))
            out[table] = (
                f"{sum(missing.values())} rows only in the first, {sum(extra.values())} only in the second; e.g. {sample}"
            )
    return out


# --- The scenario --------------------------------------------------------------------------


def run_scenario(
    config: Config, *, env: dict[str, str], workdir: Path, log: Callable[[str], None] = common.note
) -> Result:
    """Seed once, run on 1 host and on ``config.hosts`` hosts, compare. ``env``: the
    workers' environment (settings module, SECRET_KEY …); the URLs are added here."""
    import psycopg
    from psycopg import sql

    workdir.mkdir(parents=True, exist_ok=True)
    begun = time.perf_counter()
    with worker_hosts(config.hosts) as hosts:
        gateways = [host.gateway for host in hosts]
        with Postgres(addresses=gateways) as pg, Redis(addresses=gateways) as redis:
            log(
                f"{time.perf_counter() - begun:.1f} s: {len(hosts)} hosts ({', '.join(f'{h.namespace} {h.address}' for h in hosts)}); "
                f"PostgreSQL :{pg.port} and Redis :{redis.port} on 127.0.0.1 and {', '.join(gateways)}"
            )
            with psycopg.connect(pg.url("postgres"), autocommit=True) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SEED_DATABASE)))
            started = time.perf_counter()
            _seed_in_child(pg.url(SEED_DATABASE), config, redis.url(CACHE_DB), env, log)
            seed_s = time.perf_counter() - started
            log(f"seeded {SEED_DATABASE} in {seed_s:.1f} s")
            runs = []
            for count in dict.fromkeys([1, config.hosts]):
                runs.append(
                    run_once(
                        hosts=hosts[:count],
                        pg=pg,
                        redis=redis,
                        database=f"multihost_{count}",
                        config=config,
                        env=env,
                        workdir=workdir,
                        log=log,
                    )
                )
            started = time.perf_counter()
            tables = [table_rows(pg.url(run.database)) for run in runs]
            log(
                f"read {len(OUTPUT_TABLES)} output tables of {len(runs)} databases in {time.perf_counter() - started:.1f} s"
            )
    rows = {table: sum(counter.values()) for table, counter in tables[0].items()}
    return Result(
        seed_s=seed_s,
        runs=runs,
        hosts=hosts,
        rows=rows,
        differences=differences(tables[0], tables[-1]),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.multihost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000, help="Accounts (default 2,000).")
    parser.add_argument("--months", type=int, default=12, help="Months of daily rollups before --as-of (default 12).")
    parser.add_argument("--people", type=int, default=100, help="Head count (default 100).")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=Config.as_of, help="The metrics day.")
    parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
    parser.add_argument("--first-seen", type=int, default=200, help="FirstSeen rows (default 200).")
    parser.add_argument("--hosts", type=int, default=3, help="Worker hosts of the second pass (default 3).")
    parser.add_argument("--shards", type=int, default=6, help="Forecast shards (default 6).")
    parser.add_argument("--workdir", type=Path, default=common.BASE_DIR / ".run" / "multihost", help=argparse.SUPPRESS)
    parser.add_argument("--seed-into", default=None, help=argparse.SUPPRESS)  # the seeding child
    parser.add_argument("--redis-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config(
        accounts=args.accounts,
        months=args.months,
        people=args.people,
        as_of=args.as_of,
        seed=args.seed,
        first_seen=args.first_seen,
        shards=args.shards,
        hosts=args.hosts,
    )
    if args.seed_into:
        seed(args.seed_into, config, args.redis_url)
        return 0
    from bench.netns import unavailable

    summary = common.Summary(NAME)
    reason = unavailable()
    if reason:
        summary.check("worker hosts", f"not run: {reason}", "root", False)
        summary.print()
        summary.write_json(args.summary_json)
        return 0
    common.install_exit_on_sigterm()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "DEBUG": "false",
        "OPENBLAS_NUM_THREADS": "1",
    }
    common.heading(f"{config.accounts:,} accounts, {config.months} months; 1 vs {config.hosts} worker hosts")
    result = run_scenario(config, env=env, workdir=args.workdir)
    summary.info("machine", common.machine_line())
    summary.info("seed", f"{result.seed_s:.1f} s")
    for run in result.runs:
        shard_hosts = sorted({host for label, host in run.ran_on.items() if label.startswith("shard")})
        summary.info(
            f"wall time, {run.hosts} host{'s' if run.hosts > 1 else ''}",
            f"{run.wall_s:.2f} s (tasks {sum(run.task_s.values()):.1f} s in all; shards on {', '.join(shard_hosts)})",
        )
    summary.info("rows compared", ", ".join(f"{t.split('_', 1)[1]} {n:,}" for t, n in result.rows.items()))
    summary.check(
        "outputs, 1 host vs many",
        "identical" if not result.differences else "; ".join(f"{t}: {d}" for t, d in result.differences.items())[:200],
        "identical",
        not result.differences,
    )
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
