"""Faults with nothing lost: usage through the API and import jobs while workers die and Redis restarts.

    python -m bench.faults [--events 1000000] [--outage 15] [--clients 4] [--keep-logs]

Sends ``--events`` usage events (10% of them replays of an earlier (source, id), a third
of those with another time; 10% late, up to 30 days back, inside the retention window)
through two doors at once: ``POST /api/v1/events`` over real HTTP to gunicorn (batches of
1,000–5,000 from ``--clients`` keep-alive client threads that retry until answered, as a
real sender does) and CSV import jobs (``usage.ingestion.jobs.import_job_create``, run by
``usage.tasks.run_import_job`` in a real ``celery worker`` process). The broker, the
result backend and the cache are one Redis of the bench's own
(``revops.devservices.EmbeddedRedis`` in a temporary directory, on a port of its own):
never the machine's Redis on 6379.

While the events flow the scenario

1. SIGKILLs the worker in the middle of a rollup fold (``usage.tasks.fold_rollups``: the
   fold's advisory lock held and its statements running) and starts a new worker;
2. SIGKILLs that worker in the middle of an import job and starts a new one; the job,
   left "running", is sent again by the stale-job sweep once its heartbeat is stale and
   runs on the new worker;
3. stops Redis (``SHUTDOWN SAVE``, as ``EmbeddedRedis.stop`` does), creates an import job
   and keeps posting while it is away, then starts it again on the same port.

A stand-in for Celery beat sends the two safety nets (``requeue_stale_import_jobs`` and
``fold_rollups``) every ``--beat-every`` seconds through the broker, as beat would (beat's
own periods are 300 s and 60 s); the import-job heartbeat, stale limit and queued-resend
limit are shortened through their settings (``USAGE_IMPORT_*``; 30 s, 180 s and 60 s in
production) so the recoveries take seconds, not minutes. Then it checks:

* every acknowledged event (a 200 answer, or a job that succeeded) is stored exactly once:
  distinct (source, id) acknowledged = rows in ``usage_event``, no (source, id) twice, none
  lost, the answers' ``accepted`` add up to the rows stored;
* the rollups equal a full rebuild from the raw events (``rebuild_from_events``);
* every import job ended ``succeeded``, or ``failed`` with a reason: none stuck;
* the API answered no 5xx (a 503 with ``Retry-After`` would be allowed while the broker is
  away; none is expected: events are committed in PostgreSQL and the tasks they schedule
  are picked up later by the safety nets);

and reports events sent / accepted / duplicates / stored / lost, the API's throughput,
the time from the SIGKILL to the job finishing on the new worker, the time from the Redis
restart to the rollups holding every event stored before it, and the wall time.

``run_scenario`` is the scenario itself; ``tests/usage/test_faults.py`` runs it at 60,000
events against the test database.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import common

NAME = "faults"
SOURCES = ("meter-agent", "billing-export")
CSV_HEADER = "id,source,account,meter,time,quantity,workload,region\n"
FOLD_TASK = "usage.tasks.fold_rollups"
SWEEP_TASK = "usage.tasks.requeue_stale_import_jobs"
# Settings of revops.celery.app the publishing side shares with the worker (as tests/conftest.py).
CLIENT_CONF_KEYS = (
    "task_serializer",
    "result_serializer",
    "accept_content",
    "result_accept_content",
    "result_expires",
    "task_acks_late",
    "task_track_started",
    "task_routes",
    "task_queues",
    "task_default_queue",
    "timezone",
    "enable_utc",
)
# What a request on a keep-alive connection the server has closed meanwhile fails with.
STALE_KEEPALIVE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)
# Redis databases of the bench's own server: the cache (the test settings move it to their
# own number), and the broker with its results.
CACHE_DB, BROKER_DB = 0, 1


@dataclass
class Config:
    events: int = 1_000_000
    accounts: int = 5_000
    seed: int = 7
    api_share: float = 0.6  # the rest goes through CSV import jobs
    replay_share: float = 0.10
    replay_new_time_share: float = 1 / 3
    late_share: float = 0.10
    late_days: int = 30  # inside USAGE_RAW_RETENTION_DAYS (35)
    batch_min: int = 1_000
    batch_max: int = 5_000  # the API's MAX_BATCH
    clients: int = 4
    jobs: int = 12
    outage_s: float = 15.0
    heartbeat_s: int = 2
    stale_after_s: int = 10
    queued_resend_after_s: int = 10
    beat_every_s: float = 5.0
    web_workers: int = 2
    web_threads: int = 4
    wait_s: float = 900.0  # longest wait for any one step

    @classmethod
    def small(cls, events: int = 60_000) -> Config:
        """The test's size: the same scenario in well under a minute on two cores."""
        return cls(
            events=events,
            accounts=500,
            batch_min=300,
            batch_max=2_000,
            jobs=6,
            outage_s=4.0,
            heartbeat_s=1,
            stale_after_s=3,
            queued_resend_after_s=2,
            beat_every_s=1.0,
            wait_s=60.0,
        )

    def limits_env(self) -> dict[str, str]:
        return {
            "USAGE_IMPORT_HEARTBEAT_S": str(self.heartbeat_s),
            "USAGE_IMPORT_STALE_AFTER_S": str(self.stale_after_s),
            "USAGE_IMPORT_QUEUED_RESEND_AFTER_S": str(self.queued_resend_after_s),
        }


# --- The events --------------------------------------------------------------------------


@dataclass
class Plan:
    """Every distinct event once (``u`` indexes these lists) and every send of one."""

    ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    meters: list[str] = field(default_factory=list)
    quantities: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    api: list[tuple[int, int]] = field(default_factory=list)  # (u, time in epoch seconds)
    csv: list[tuple[int, int]] = field(default_factory=list)
    replays: int = 0
    replays_new_time: int = 0
    late: int = 0

    @property
    def unique(self) -> int:
        return len(self.ids)

    @property
    def sent(self) -> int:
        return len(self.api) + len(self.csv)


def _stamp(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def make_plan(population, config: Config, *, now: dt.datetime) -> Plan:
    """Deterministic from the seed and ``now``: new events, replays of earlier ones, late ones."""
    rng = random.Random(f"{config.seed}:faults:{config.events}")
    now_s = int(now.timestamp())
    oldest = now_s - config.late_days * 86400
    known = population.accounts[: population.known]
    picked = iter(rng.choices(known, cum_weights=population.cum_weights[: population.known], k=config.events))
    plan = Plan()
    times: list[int] = []
    for _ in range(config.events):
        if plan.ids and rng.random() < config.replay_share:
            u = int(rng.random() * len(plan.ids))
            t = times[u]
            plan.replays += 1
            if rng.random() < config.replay_new_time_share:
                t = min(max(oldest, t + rng.randint(-3 * 86400, 3 * 86400)), now_s - 60)
                plan.replays_new_time += 1
        else:
            u = len(plan.ids)
            account = next(picked)
            prefix, quantities, tail = account.slots[int(rng.random() * len(account.slots))]
            _ext, meter, _ = prefix.split(",")
            workload, region = tail.strip().lstrip(",").split(",")
            if rng.random() < config.late_share:
                t = now_s - rng.randint(2 * 86400, config.late_days * 86400)
                plan.late += 1
            else:
                t = now_s - rng.randint(60, 2 * 86400)
            plan.ids.append(f"fx{u:09d}")
            plan.sources.append(SOURCES[u % len(SOURCES)])
            plan.accounts.append(account.external_id)
            plan.meters.append(meter)
            plan.quantities.append(quantities[int(rng.random() * len(quantities))])
            plan.workloads.append(workload)
            plan.regions.append(region)
            times.append(t)
        (plan.api if rng.random() < config.api_share else plan.csv).append((u, t))
    return plan


def render_json(plan: Plan, sends: list[tuple[int, int]]) -> bytes:
    p = plan
    return (
        "["
        + ",".join(
            f'{{"id":"{p.ids[u]}","source":"{p.sources[u]}","account":"{p.accounts[u]}","meter":"{p.meters[u]}",'
            f'"time":"{_stamp(t)}","quantity":{p.quantities[u]},'
            f'"properties":{{"workload":"{p.workloads[u]}","region":"{p.regions[u]}"}}}}'
            for u, t in sends
        )
        + "]"
    ).encode()


def write_csv(plan: Plan, sends: list[tuple[int, int]], path: Path) -> None:
    p = plan
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(CSV_HEADER)
        out.writelines(
            f"{p.ids[u]},{p.sources[u]},{p.accounts[u]},{p.meters[u]},{_stamp(t)},{p.quantities[u]},"
            f"{p.workloads[u]},{p.regions[u]}\n"
            for u, t in sends
        )


def split_batches(sends: list[tuple[int, int]], rng: random.Random, low: int, high: int) -> list[list[tuple[int, int]]]:
    batches, i = [], 0
    while i < len(sends):
        n = rng.randint(low, high)
        batches.append(sends[i : i + n])
        i += n
    return batches


# --- The API clients ---------------------------------------------------------------------


@dataclass
class Answer:
    batch: int
    started: float
    ended: float
    status: int
    retry_after: str | None
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    rejected: int = 0
    detail: str = ""


class ApiClients:
    """Client threads posting queued batches over keep-alive connections until each is answered 200.

    A batch that gets anything else (an error status, a dropped connection) is sent again
    with the same ids after ``Retry-After`` (or 1 s): what a real sender does, and safe,
    since events are deduplicated on (source, id).
    """

    def __init__(self, port: int, token: str, plan: Plan, batches: list[list[tuple[int, int]]], clients: int) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.plan = plan
        self.batches = batches
        self.acked = bytearray(plan.unique)
        self.answers: list[Answer] = []
        self.reconnects = 0
        self.released = 0
        self.done = 0
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"api-client-{i}", daemon=True) for i in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def release_until(self, share: float) -> None:
        """Queue batches until ``share`` of all of them has been released."""
        target = min(len(self.batches), round(share * len(self.batches)))
        while self.released < target:
            self._queue.put(self.released)
            self.released += 1

    def release_one(self) -> bool:
        if self.released >= len(self.batches):
            return False
        self._queue.put(self.released)
        self.released += 1
        return True

    @property
    def idle(self) -> bool:
        return self.done >= self.released

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        conn = None
        while (index := self._queue.get()) is not None:
            sends = self.batches[index]
            body = render_json(self.plan, sends)
            while True:
                started = time.time()
                reused = conn is not None
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
                    conn.request("POST", "/api/v1/events", body, self.headers)
                    response = conn.getresponse()
                    data = response.read()
                    status, retry_after = response.status, response.getheader("Retry-After")
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = None
                    if reused and isinstance(exc, STALE_KEEPALIVE):
                        # gunicorn closes a keep-alive connection idle for 2 s: send again on a new one.
                        self.reconnects += 1
                        continue
                    status, retry_after, data = -1, None, f"{type(exc).__name__}: {exc}".encode()
                answer = Answer(index, started, time.time(), status, retry_after)
                if status == 200:
                    out = json.loads(data)
                    answer.accepted, answer.duplicates = out["accepted"], out["duplicates"]
                    answer.quarantined, answer.rejected = out["quarantined"], len(out["rejected"])
                    for u, _t in sends:
                        self.acked[u] = 1
                else:
                    answer.detail = data[:300].decode(errors="replace")
                self.answers.append(answer)
                if status == 200:
                    break
                time.sleep(min(30.0, float(retry_after)) if retry_after and retry_after.isdigit() else 1.0)
            with self._lock:
                self.done += 1
        if conn is not None:
            conn.close()


# --- Processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Web:
    """gunicorn serving revops.wsgi in a process group of its own."""

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int, threads: int) -> None:
        self.port = free_port()
        self.log_path = log_path
        cmd = [
            str(Path(sys.executable).with_name("gunicorn")),
            "revops.wsgi",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=common.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5):
                    break
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP status (503: no beat yet) still means serving
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer within 90 s:\n{self.log()[-3000:]}") from None
                time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class Worker:
    """One ``celery -A revops worker`` process (solo pool: the worker is the process that runs tasks)."""

    def __init__(self, env: dict[str, str], log_path: Path, app, number: int) -> None:
        self.log_path = log_path
        self.number = number
        command = [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "revops",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--hostname",
            f"faults-{number}-{os.getpid()}@%h",
        ]
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=common.BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        from celery.exceptions import TimeoutError as CeleryTimeout

        probe = app.send_task("revops.tasks.ping", args=[f"worker {number} ready"])
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {number} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                probe.get(timeout=1)
                break
            except CeleryTimeout:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"worker {number} did not answer a ping in 120 s:\n{self.log()[-3000:]}"
                    ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown: the task in hand finishes
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


class BeatStandIn(threading.Thread):
    """What ``celery beat`` sends for usage's safety nets, every ``every`` seconds instead of 300 s / 60 s."""

    def __init__(self, app, every: float) -> None:
        super().__init__(name="beat-stand-in", daemon=True)
        self.app, self.every = app, every
        self.sent = self.failed = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        from kombu.exceptions import KombuError
        from redis.exceptions import RedisError

        while not self._stopping.wait(self.every):
            for name, expires in ((SWEEP_TASK, 240), (FOLD_TASK, 55)):
                try:
                    self.app.send_task(name, expires=expires, ignore_result=True)
                    self.sent += 1
                except (KombuError, RedisError, OSError):  # the broker is away: beat's send fails the same way
                    self.failed += 1

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)


def restart_redis(server) -> None:
    """Start the stopped server again on the same port with the same password (its own config file)."""
    from revops.devservices import redis_server_binary

    subprocess.run(
        [str(redis_server_binary()), str(server.directory / "redis.conf")], check=True, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while not server.answers(timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("the embedded Redis did not come back within 20 s")
        time.sleep(0.05)


# --- Watching the database ---------------------------------------------------------------


def connection_params() -> dict[str, str]:
    """psycopg parameters for the database Django is set up on."""
    from django.db import connection

    db = connection.settings_dict
    params = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"], "host": db["HOST"]}
    params["port"] = str(db["PORT"] or "")
    options = (db.get("OPTIONS") or {}).get("options")
    if isinstance(options, str):
        params["options"] = options
    return {key: value for key, value in params.items() if value}


class Db:
    """An autocommit connection of the scenario's own (threads each open theirs)."""

    def __init__(self, params: dict[str, str]) -> None:
        import psycopg

        self.params = params
        self.conn = psycopg.connect(**params, autocommit=True)

    def one(self, sql: str, params: list | None = None):
        return self.conn.execute(sql, params or []).fetchone()

    def all(self, sql: str, params: list | None = None):
        return self.conn.execute(sql, params or []).fetchall()

    def now(self) -> dt.datetime:
        return self.one("SELECT clock_timestamp()")[0]

    def close(self) -> None:
        self.conn.close()


def stored_events(db: Db) -> int:
    return db.one("SELECT count(*) FROM usage_event")[0]


def folded_events(db: Db) -> int:
    return db.one("SELECT COALESCE(sum(event_count), 0) FROM usage_dailyrollup")[0]


def pending_deltas(db: Db) -> int:
    return db.one("SELECT count(*) FROM usage_rollupdelta")[0]


def fold_in_progress(db: Db, fold_lock: int):
    """The backend holding the fold lock and what it runs, if a fold is under way."""
    return db.one(
        "SELECT a.pid, a.state, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70) FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = %s AND l.granted"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        # Claiming deltas (deleted in its open transaction), or re-pricing what it claimed.
        " AND (a.query LIKE '%%WITH claimed AS%%' OR a.query LIKE 'ANALYZE _reprice_months%%'"
        "      OR a.query LIKE '%%FROM _reprice_months t%%')",
        [fold_lock],
    )


class CatchUp(threading.Thread):
    """Seconds from ``since`` until the rollups hold ``target`` events (every event stored by then)."""

    def __init__(self, params: dict[str, str], target: int, since: float, wait_s: float) -> None:
        super().__init__(name="catch-up", daemon=True)
        self.params, self.target, self.since, self.wait_s = params, target, since, wait_s
        self.seconds: float | None = None
        self.start()

    def run(self) -> None:
        db = Db(self.params)
        try:
            while time.time() - self.since < self.wait_s:
                if folded_events(db) >= self.target:
                    self.seconds = time.time() - self.since
                    return
                time.sleep(0.2)
        finally:
            db.close()


# --- The scenario ------------------------------------------------------------------------


@dataclass
class Result:
    summary: common.Summary
    figures: dict[str, object] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[common.Row]:
        return [row for row in self.summary.rows if row.verdict == "FAIL"]


def client_app(broker_url: str):
    from celery import Celery

    from revops.celery import app as project_app

    app = Celery("revops-faults-client", set_as_current=False)
    app.conf.update(
        {key: project_app.conf[key] for key in CLIENT_CONF_KEYS}, broker_url=broker_url, result_backend=broker_url
    )
    return app


def run_scenario(
    config: Config,
    *,
    redis,
    env: dict[str, str],
    workdir: Path,
    log: Callable[[str], None] = common.note,
) -> Result:
    """The whole scenario against the database Django is set up on and ``redis`` (an
    ``EmbeddedRedis`` that answers; stopped and started again here, left running). ``env``
    is the child processes' environment: settings module, ``DATABASE_URL`` (the same
    database), ``SECRET_KEY`` and the like; the Redis URLs, ``MEDIA_ROOT`` and the
    import-job limits are added here. Uploads go to this process's ``MEDIA_ROOT``, which
    the workers share."""
    from celery import current_app
    from django.conf import settings
    from django.core.files import File

    from bench.datagen import Population
    from revops.api_keys import api_key_create
    from revops.devservices import with_redis_db
    from revops.models import ApiKey
    from usage.ingestion.jobs import import_job_create
    from usage.ingestion.rollups import FOLD_LOCK, rebuild_from_events
    from usage.models import ImportKind

    wall_started = time.time()
    summary = common.Summary(NAME)
    result = Result(summary)
    figures = result.figures
    workdir.mkdir(parents=True, exist_ok=True)
    redis_url = redis.url(CACHE_DB)
    broker_url = with_redis_db(redis_url, BROKER_DB)
    child_env = {
        **env,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
        **config.limits_env(),
    }
    params = connection_params()
    db = Db(params)
    already = db.one("SELECT (SELECT count(*) FROM usage_event) + (SELECT count(*) FROM usage_dailyrollup)")[0]
    if already:
        raise RuntimeError("the scenario needs a database without usage events or rollups")

    population = Population(config.seed, accounts=config.accounts)
    population.ensure_reference_data()
    _key, token = api_key_create(
        name=f"faults {int(time.time()):x}", scopes=[ApiKey.Scope.EVENTS_WRITE], rate_limit_per_minute=1_000_000_000
    )
    started = time.perf_counter()
    plan = make_plan(population, config, now=dt.datetime.now(dt.UTC))
    rng = random.Random(f"{config.seed}:faults:batches")
    batches = split_batches(plan.api, rng, config.batch_min, config.batch_max)
    csv_dir = workdir / "csv"
    csv_dir.mkdir(exist_ok=True)
    # jobs + 1 equal chunks; the job to kill mid-import gets two (a longer import to catch).
    size = -(-len(plan.csv) // (config.jobs + 1))
    chunks = [plan.csv[i : i + size] for i in range(0, len(plan.csv), size)]
    chunks = [chunks[0] + chunks[1], *chunks[2:]] if len(chunks) > 1 else chunks
    files: list[tuple[Path, list[tuple[int, int]]]] = []
    for number, sends in enumerate(chunks):
        path = csv_dir / f"usage-{number:02d}.csv"
        write_csv(plan, sends, path)
        files.append((path, sends))
    kill_file, other_files = files[0], files[1:]
    first_files = other_files[: max(1, (len(other_files) - 1) // 2)]
    outage_file = other_files[len(first_files)] if len(other_files) > len(first_files) else None
    last_files = other_files[len(first_files) + 1 :]
    log(
        f"{plan.sent:,} events planned in {time.perf_counter() - started:.1f} s: {plan.unique:,} distinct, "
        f"{plan.replays:,} replays ({plan.replays_new_time:,} with another time), {plan.late:,} late; "
        f"{len(plan.api):,} through the API in {len(batches):,} batches, {len(plan.csv):,} in {len(files)} CSV files"
    )
    log(
        f"import-job limits: heartbeat {config.heartbeat_s} s, stale after {config.stale_after_s} s, queued resend "
        f"after {config.queued_resend_after_s} s; beat stand-in every {config.beat_every_s:g} s"
    )

    app = client_app(broker_url)
    previous_app = current_app._get_current_object()
    app.set_current()  # usage.enqueue sends through current_app: the upload's task goes to our broker
    jobs: dict[int, list[tuple[int, int]]] = {}
    workers: list[Worker] = []
    clients = beat = None
    catch_ups: dict[str, CatchUp] = {}

    def start_worker() -> Worker:
        worker = Worker(child_env, workdir / f"worker-{len(workers) + 1}.log", app, len(workers) + 1)
        workers.append(worker)
        result.logs.append(worker.log_path)
        return worker

    def submit(path: Path, sends: list[tuple[int, int]]) -> int:
        with open(path, "rb") as handle:
            job = import_job_create(kind=ImportKind.USAGE, upload=File(handle, name=path.name), user=None)
        jobs[job.pk] = sends
        return job.pk

    def wait_for(what: str, condition: Callable[[], bool], *, every: float = 0.1, pump: bool = False) -> bool:
        deadline = time.monotonic() + config.wait_s
        while time.monotonic() < deadline:
            if condition():
                return True
            if pump and clients is not None and clients.idle:
                clients.release_one()  # keep events (and so folds) coming while we wait
            time.sleep(every)
        log(f"gave up waiting {config.wait_s:.0f} s for {what}")
        return False

    stack = contextlib.ExitStack()  # every process is stopped, even when stopping another fails
    stack.callback(app.close)
    stack.callback(previous_app.set_current)
    stack.callback(lambda: [worker.stop() for worker in workers])
    try:
        web = Web(child_env, workdir / "gunicorn.log", workers=config.web_workers, threads=config.web_threads)
        stack.callback(web.stop)
        result.logs.append(web.log_path)
        log(f"gunicorn on 127.0.0.1:{web.port} ({config.web_workers} workers × {config.web_threads} threads)")
        start_worker()
        log(f"worker 1 answers (pid {workers[-1].proc.pid}); Redis at 127.0.0.1:{redis_url.rsplit(':', 1)[1]}")
        beat = BeatStandIn(app, config.beat_every_s)
        beat.start()
        stack.callback(beat.stop)
        clients = ApiClients(web.port, token, plan, batches, config.clients)
        stack.callback(clients.stop)
        api_started = time.time()

        # 1. A worker SIGKILLed in the middle of a fold.
        common.heading("fault 1: SIGKILL the worker in the middle of a rollup fold")
        clients.release_until(0.3)
        for path, sends in first_files:
            submit(path, sends)
        wait_for("a tenth of the API batches", lambda: clients.done >= 0.1 * len(batches), pump=True)
        caught = None

        def fold_seen() -> bool:
            nonlocal caught
            caught = fold_in_progress(db, FOLD_LOCK)
            return caught is not None

        deadline = time.monotonic() + config.wait_s
        while not fold_seen() and time.monotonic() < deadline:
            if clients.idle and clients.released < 0.5 * len(batches):
                clients.release_one()
            time.sleep(0.003)
        if caught is not None:
            workers[-1].kill()
            fold_kill_at = time.time()
            stored_at_kill = stored_events(db)
            wait_for("the killed fold's lock to go", lambda: fold_in_progress(db, FOLD_LOCK) is None, every=0.05)
            log(
                f"killed worker {workers[-1].number} while its backend {caught[0]} was {caught[1]}: "
                f"{caught[2]}…; rolled back {time.time() - fold_kill_at:.2f} s later, "
                f"{pending_deltas(db):,} delta rows pending"
            )
            start_worker()
            log(f"worker {workers[-1].number} answers {time.time() - fold_kill_at:.1f} s after the kill")
            catch_ups["fold kill"] = CatchUp(params, stored_at_kill, fold_kill_at, config.wait_s)
        summary.check("worker killed mid-fold", "yes" if caught else "no fold seen", "yes", caught is not None)

        # 2. A worker SIGKILLed in the middle of an import job.
        common.heading("fault 2: SIGKILL the worker in the middle of an import job")
        clients.release_until(0.5)
        kill_job = submit(*kill_file)
        killed = None
        since = db.now()

        def job_running() -> bool:
            nonlocal killed
            killed = db.one(
                # Claimed and reading its file (progress is written per MB read): inside the
                # import's transaction.
                "SELECT id, bytes_done, size_bytes FROM usage_importjob WHERE status = 'running'"
                " AND heartbeat_at >= %s AND bytes_done > 0 ORDER BY id LIMIT 1",
                [since],
            )
            return killed is not None

        wait_for("an import job to run", job_running, every=0.003)
        recovered_s = status_after_kill = None
        if killed is not None:
            workers[-1].kill()
            import_kill_at = db.now()
            status_after_kill = db.one("SELECT status FROM usage_importjob WHERE id = %s", [killed[0]])[0]
            log(
                f"killed worker {workers[-1].number} running import job {killed[0]} "
                f"({killed[1]:,} of {killed[2]:,} bytes read); the job is now '{status_after_kill}'"
            )
            start_worker()
            done = wait_for(
                f"job {killed[0]} to finish on a new worker",
                lambda: (
                    db.one("SELECT status FROM usage_importjob WHERE id = %s", [killed[0]])[0]
                    not in ("queued", "running")
                ),
            )
            if done:
                status, finished = db.one("SELECT status, finished_at FROM usage_importjob WHERE id = %s", [killed[0]])
                recovered_s = (finished - import_kill_at).total_seconds()
                log(f"job {killed[0]} {status} {recovered_s:.1f} s after the kill")
            figures["mid_import_job"] = killed[0]
        summary.check(
            "worker killed mid-import",
            f"job {killed[0]}, {100 * killed[1] / max(1, killed[2]):.0f} % read" if killed else "no job seen running",
            "yes",
            status_after_kill == "running",
        )
        figures["import_recovery_s"] = recovered_s
        figures["kill_job"] = kill_job

        # 3. Redis (broker, results, cache) stopped while events keep coming, then started again.
        common.heading(f"fault 3: stop Redis for {config.outage_s:g} s, then start it again")
        redis.stop()
        outage_from = time.time()
        log("Redis stopped")
        outage_job = None
        if outage_file is not None:
            outage_job = submit(*outage_file)
            log(f"import job {outage_job} created while Redis is away ({time.time() - outage_from:.1f} s to commit)")
        # A fifth of the batches, released evenly over the outage: events arrive all along.
        first, count = clients.released, max(1, round(0.7 * len(batches)) - clients.released)
        while (elapsed := time.time() - outage_from) < config.outage_s:
            while clients.released < first + min(count, int(count * elapsed / config.outage_s) + 1):
                clients.release_one()
            time.sleep(0.02)
        restart_redis(redis)
        outage_to = time.time()
        stored_at_restart = stored_events(db)
        catch_ups["redis restart"] = CatchUp(params, stored_at_restart, outage_to, config.wait_s)
        log(f"Redis started again after {outage_to - outage_from:.1f} s; {stored_at_restart:,} events stored by then")
        figures["outage_s"] = outage_to - outage_from
        if outage_job is not None:
            status = db.one("SELECT status FROM usage_importjob WHERE id = %s", [outage_job])[0]
            figures["outage_job_status_at_restart"] = status

        # 4. The rest, then everything must settle.
        common.heading("the rest of the events; waiting for every batch, job and fold")
        clients.release_until(1.0)
        for path, sends in last_files:
            submit(path, sends)
        wait_for("every API batch to be answered 200", lambda: clients.idle, every=0.2)
        api_ended = max((a.ended for a in clients.answers), default=time.time())
        all_jobs = list(jobs)
        wait_for(
            "every import job to finish",
            lambda: (
                db.one(
                    "SELECT count(*) FROM usage_importjob WHERE id = ANY(%s) AND status IN ('queued', 'running')",
                    [all_jobs],
                )[0]
                == 0
            ),
            every=0.2,
        )
        wait_for(
            "the rollups to hold every stored event",
            lambda: pending_deltas(db) == 0 and folded_events(db) == stored_events(db),
            every=0.2,
        )
        for watcher in catch_ups.values():
            watcher.join(timeout=config.wait_s)
        if outage_job is not None:
            finished = db.one("SELECT finished_at FROM usage_importjob WHERE id = %s", [outage_job])[0]
            if finished is not None:
                figures["outage_job_finished_after_restart_s"] = finished.timestamp() - outage_to
    except BaseException:
        with stack:
            db.close()
        raise
    stack.close()

    # --- What the database holds -----------------------------------------------------------
    common.heading("checks")
    answers = clients.answers
    ok = [a for a in answers if a.status == 200]
    statuses = Counter(a.status for a in answers)
    server_errors = [a for a in answers if a.status >= 500]
    allowed_503 = [a for a in server_errors if a.status == 503 and a.retry_after]
    during = [a for a in answers if a.started < outage_to and a.ended > outage_from]
    job_rows = {
        row[0]: row[1:]
        for row in db.all(
            "SELECT j.id, j.status, j.summary, j.error_count, j.errors, f.accepted FROM usage_importjob j"
            " LEFT JOIN usage_importedusagefile f ON f.sha256 = j.sha256 WHERE j.id = ANY(%s)",
            [list(jobs)],
        )
    }
    acked = clients.acked
    job_accepted = 0
    for job_id, (status, job_summary, _count, _errors, file_accepted) in job_rows.items():
        if status == "succeeded":
            for u, _t in jobs[job_id]:
                acked[u] = 1
            # A job re-run after its first run had committed finds its file already imported.
            job_accepted += (
                file_accepted if "already imported on" in job_summary else job_summary.get("accepted", 0)
            ) or 0
    sent = sum(len(clients.batches[a.batch]) for a in ok) + sum(
        len(jobs[j]) for j, row in job_rows.items() if row[0] == "succeeded"
    )
    api_accepted = sum(a.accepted for a in ok)
    duplicates = sum(a.duplicates for a in ok) + sum(
        (row[1].get("duplicates", 0) or 0) for row in job_rows.values() if row[0] == "succeeded"
    )
    quarantined = sum(a.quarantined for a in ok) + sum(
        (row[1].get("quarantined", 0) or 0) for row in job_rows.values() if row[0] == "succeeded"
    )
    rejected = sum(a.rejected for a in ok)

    with db.conn.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE _acked (source text, event_id text)")
        with cursor.copy("COPY _acked (source, event_id) FROM STDIN") as copy:
            for u in range(plan.unique):
                if acked[u]:
                    copy.write_row((plan.sources[u], plan.ids[u]))
        cursor.execute("ANALYZE _acked")
    acked_distinct = db.one("SELECT count(*) FROM _acked")[0]
    stored, distinct_stored = db.one("SELECT count(*), count(DISTINCT (source, event_id)) FROM usage_event")
    keys = db.one("SELECT count(*) FROM usage_eventkey")[0]
    lost = db.one(
        "SELECT count(*) FROM _acked a WHERE NOT EXISTS"
        " (SELECT 1 FROM usage_event e WHERE e.source = a.source AND e.event_id = a.event_id)"
    )[0]
    unacknowledged = db.one(
        "SELECT count(*) FROM usage_event e WHERE NOT EXISTS"
        " (SELECT 1 FROM _acked a WHERE e.source = a.source AND e.event_id = a.event_id)"
    )[0]
    db.conn.execute("DROP TABLE _acked")

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE _incremental AS"
            " SELECT account_id, meter_id, day, quantity, revenue, event_count FROM usage_dailyrollup"
        )
        started = time.perf_counter()
        rebuilt_rows = rebuild_from_events()
        rebuild_s = time.perf_counter() - started
        cursor.execute(
            "SELECT (SELECT count(*) FROM (SELECT account_id, meter_id, day, quantity, revenue, event_count"
            "  FROM usage_dailyrollup EXCEPT SELECT * FROM _incremental) a),"
            " (SELECT count(*) FROM (SELECT * FROM _incremental EXCEPT SELECT account_id, meter_id, day, quantity,"
            "  revenue, event_count FROM usage_dailyrollup) b), (SELECT count(*) FROM _incremental)"
        )
        only_rebuilt, only_incremental, incremental_rows = cursor.fetchone()
        cursor.execute("DROP TABLE _incremental")
    db.close()

    by_status = Counter(row[0] for row in job_rows.values())
    stuck = by_status.get("queued", 0) + by_status.get("running", 0)
    failed_without_reason = sum(1 for row in job_rows.values() if row[0] == "failed" and not row[3] and not row[2])
    api_events = sum(len(clients.batches[a.batch]) for a in ok)
    api_s = max(1e-9, api_ended - api_started)
    wall_s = time.time() - wall_started
    figures.update(
        sent=plan.sent,
        acknowledged_sends=sent,
        accepted=api_accepted + job_accepted,
        duplicates=duplicates,
        stored=stored,
        lost=lost,
        api_events_per_s=api_events / api_s,
        wall_s=wall_s,
        statuses=dict(statuses),
    )
    for name, watcher in catch_ups.items():
        figures[f"{name.replace(' ', '_')}_caught_up_s"] = watcher.seconds

    log(
        f"API: {len(ok):,} batches answered 200 ({api_events:,} events) in {api_s:.1f} s = "
        f"{api_events / api_s:,.0f} events/s; every answer by status: {dict(sorted(statuses.items()))}; "
        f"{clients.reconnects} requests sent again on a new connection (an idle keep-alive closed by gunicorn)"
    )
    if during:
        latencies = sorted(a.ended - a.started for a in during)
        log(
            f"answers overlapping the Redis outage: {len(during)} ({Counter(a.status for a in during)}), "
            f"latency median {statistics.median(latencies):.2f} s, max {latencies[-1]:.2f} s"
        )
    for answer in [a for a in answers if a.status != 200][:5]:
        log(f"non-200 answer: {answer.status} Retry-After={answer.retry_after} {answer.detail[:200]}")
    log(f"import jobs: {dict(by_status)}; beat stand-in sends {beat.sent} ok, {beat.failed} failed (broker away)")
    for job_id, (status, job_summary, count, errors, _file_accepted) in sorted(job_rows.items()):
        if status != "succeeded" or "already imported on" in job_summary:
            log(f"job {job_id}: {status} {job_summary} {count} errors {errors[:2]}")
    log(
        f"usage_event: {stored:,} rows, {distinct_stored:,} distinct (source, id), {keys:,} dedupe keys; "
        f"acknowledged distinct {acked_distinct:,}; lost {lost:,}; stored but never acknowledged {unacknowledged:,}"
    )
    log(
        f"rebuild_from_events: {rebuilt_rows:,} rows in {rebuild_s:.1f} s; incremental {incremental_rows:,} rows; "
        f"only in the rebuild {only_rebuilt:,}, only in the incremental rollups {only_incremental:,}"
    )
    tracebacks = {p.name: p.read_text(errors="replace").count("Traceback") for p in result.logs if p.exists()}
    log(f"tracebacks in the logs (logged and carried on, e.g. a task that could not be sent): {tracebacks}")

    summary.info("events sent (with replays)", f"{plan.sent:,} ({plan.replays:,} replays, {plan.late:,} late)")
    summary.info("events accepted (sum of answers)", f"{api_accepted + job_accepted:,}")
    summary.info("duplicates reported", f"{duplicates:,}")
    summary.check(
        "events stored = distinct acknowledged", f"{stored:,} / {acked_distinct:,}", "equal", stored == acked_distinct
    )
    summary.check("events lost", f"{lost:,}", "0", lost == 0)
    summary.check("(source, id) stored twice", f"{stored - distinct_stored:,}", "0", stored == distinct_stored)
    summary.check(
        "accepted in answers = stored",
        f"{api_accepted + job_accepted:,} / {stored:,}",
        "equal",
        api_accepted + job_accepted == stored,
    )
    summary.check(
        "acknowledged sends = accepted + duplicates",
        f"{sent:,} / {api_accepted + job_accepted + duplicates:,}",
        "equal",
        sent == api_accepted + job_accepted + duplicates + quarantined,
    )
    summary.check("stored but never acknowledged", f"{unacknowledged:,}", "0", unacknowledged == 0)
    summary.check("events sent = acknowledged sends", f"{plan.sent:,} / {sent:,}", "equal", plan.sent == sent)
    summary.check("quarantined or rejected", f"{quarantined + rejected:,}", "0", quarantined + rejected == 0)
    summary.check(
        "rollups = full rebuild",
        f"{incremental_rows:,} rows; {only_rebuilt + only_incremental} differ",
        "0 differ",
        only_rebuilt + only_incremental == 0 and incremental_rows > 0,
    )
    summary.check(
        "import jobs finished",
        ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())),
        "none queued/running",
        stuck == 0 and failed_without_reason == 0,
    )
    summary.check(
        "API 5xx (503 + Retry-After allowed)",
        f"{len(server_errors)} ({len(allowed_503)} 503 with Retry-After)",
        "0",
        len(server_errors) == len(allowed_503),
    )
    summary.info("API answers by status", ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items())))
    summary.info("API throughput (faults included)", f"{api_events / api_s:,.0f} events/s ({api_s:.0f} s)")
    if during:
        latencies = sorted(a.ended - a.started for a in during)
        summary.info(
            "API answers during the Redis outage",
            f"{len(during)}, median {statistics.median(latencies):.2f} s, max {latencies[-1]:.2f} s",
        )
    summary.check(
        "SIGKILL mid-import → job done on new worker",
        f"{recovered_s:.1f} s" if recovered_s is not None else "never",
        f"finishes (stale after {config.stale_after_s} s)",
        recovered_s is not None,
    )
    fold_catch_up = catch_ups.get("fold kill")
    if fold_catch_up is not None:
        summary.info(
            "SIGKILL mid-fold → rollups caught up",
            f"{fold_catch_up.seconds:.1f} s" if fold_catch_up.seconds is not None else "never",
        )
    restart_catch_up = catch_ups.get("redis restart")
    summary.check(
        "Redis restart → rollups caught up",
        f"{restart_catch_up.seconds:.1f} s (outage {outage_to - outage_from:.1f} s)"
        if restart_catch_up is not None and restart_catch_up.seconds is not None
        else "never",
        "catches up",
        restart_catch_up is not None and restart_catch_up.seconds is not None,
    )
    if outage_job is not None:
        after = figures.get("outage_job_finished_after_restart_s")
        summary.info(
            "job created during the outage",
            f"'{figures.get('outage_job_status_at_restart')}' at restart, finished "
            + (f"{after:.1f} s after it" if after is not None else "never"),
        )
    summary.info("rebuild_from_events", f"{rebuilt_rows:,} rows in {rebuild_s:.1f} s")
    summary.info("total wall time", f"{wall_s:.0f} s")
    return result


# --- The benchmark -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    defaults = Config()
    parser.add_argument(
        "--events", type=int, default=defaults.events, help="Events sent, replays included (1,000,000)."
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--clients", type=int, default=defaults.clients, help="API client threads (4).")
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="CSV import jobs (12).")
    parser.add_argument("--outage", type=float, default=defaults.outage_s, help="Seconds Redis stays away (15).")
    parser.add_argument(
        "--stale-after", type=int, default=defaults.stale_after_s, help="USAGE_IMPORT_STALE_AFTER_S (10)."
    )
    parser.add_argument("--beat-every", type=float, default=defaults.beat_every_s, help="Safety-net period, s (5).")
    parser.add_argument("--keep-logs", action="store_true", help="Keep the worker and gunicorn logs (and CSV files).")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.install_exit_on_sigterm()
    config = Config(
        events=args.events,
        seed=args.seed,
        clients=args.clients,
        jobs=args.jobs,
        outage_s=args.outage,
        stale_after_s=args.stale_after,
        beat_every_s=args.beat_every,
    )
    from revops.devservices import EmbeddedRedis, with_redis_db

    url = common.database_url("_faults")
    common.create_database(url, drop_first=True)
    tmp = Path(tempfile.mkdtemp(prefix="revops-bench-faults-"))
    redis = EmbeddedRedis(tmp / "redis")
    redis_url = redis.attach(register=False)
    result = None
    try:
        # This process publishes the upload tasks to the bench's Redis too, and keeps its
        # uploads where the workers read them.
        extra = {
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": with_redis_db(redis_url, BROKER_DB),
            "CELERY_RESULT_BACKEND": with_redis_db(redis_url, BROKER_DB),
            "MEDIA_ROOT": str(tmp / "media"),
            **config.limits_env(),
        }
        common.setup(url, env=extra)
        common.heading(
            f"faults: {config.events:,} events through the API and import jobs into {common.database_name(url)}, "
            "with worker SIGKILLs and a Redis restart"
        )
        common.note(common.machine_line())
        common.note(common.code_version())
        result = run_scenario(
            config,
            redis=redis,
            env=common.bench_env(url, **{k: v for k, v in extra.items() if k != "MEDIA_ROOT"}),
            workdir=tmp / "run",
        )
    finally:
        redis.stop()
        keep = args.keep_logs or result is None or bool(result.failed)
        if keep:
            common.note(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result.summary.print()
    result.summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
