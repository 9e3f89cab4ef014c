"""HTTP ingestion: POST /api/v1/events under gunicorn, 4 clients posting 1,000-event batches.

    python -m bench.api_ingest [--duration 30] [--clients 4] [--batch 1000] [--fold-every 0]

Starts ``gunicorn revops.wsgi --workers 2 --threads 4`` on a free port (DEBUG=false,
REDIS_URL set so the per-key rate limit is counted in Redis), creates an API key with a
huge rate limit, then runs client processes that each post native JSON batches over one
keep-alive connection: a warm-up (not counted), then the measured window. Every batch
holds new events (unique ids per run) for the 5,000 bench accounts, timestamps in the
last two days plus 5% late ones up to 30 days back. Reports the sustained events/s
(batches acknowledged inside the window) and the per-batch acknowledgement latency.
gunicorn is stopped at the end, whatever happens.

Budget (issue): ≥ 20,000 events/s, p99 < 500 ms per batch.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import multiprocessing
import os
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
from pathlib import Path

from bench import common
from bench.datagen import Population

NAME = "api_ingest"
BUDGET_RATE = 20_000
BUDGET_P99_MS = 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(
    index: int,
    port: int,
    token: str,
    fragments: list[str],
    batch: int,
    id_prefix: str,
    measure_from: float,
    stop_at: float,
    results,
) -> None:
    """One client process: post batches back to back until ``stop_at`` (wall clock)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    records: list[tuple[float, float, int, int]] = []  # (start, end, status, accepted)
    errors: list[str] = []
    count = len(fragments)
    offset = index * 7919
    serial = 0
    while time.time() < stop_at:
        body = (
            "["
            + ",".join(
                f'{{"id":"{id_prefix}{serial + i}",{fragments[(offset + serial + i) % count]}' for i in range(batch)
            )
            + "]"
        ).encode()
        serial += batch
        started = time.time()
        try:
            conn.request("POST", "/api/v1/events", body, headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, data = -1, str(exc).encode()
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        ended = time.time()
        accepted = 0
        if status == 200:
            accepted = json.loads(data)["accepted"]
        elif len(errors) < 5:
            errors.append(f"HTTP {status}: {data[:300]!r}")
        records.append((started, ended, status, accepted))
    conn.close()
    results.put((index, records, errors, measure_from))


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def start_gunicorn(url: str, port: int, redis_url: str, log_path: Path, workers: int, threads: int):
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = common.bench_env(
        url,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        REDIS_URL=redis_url,
    )
    cmd = [
        str(gunicorn),
        "revops.wsgi",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
    ]
    common.note("starting: " + " ".join([os.path.relpath(cmd[0], common.BASE_DIR), *cmd[1:]]))
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        cmd, cwd=common.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_file = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return proc
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status still means it is serving
                return proc
            time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{log_path.read_text()[-3000:]}")


def stop_gunicorn(proc) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        # Our own process group (start_new_session): the master and its workers only.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    proc.log_file.close()
    common.note(f"gunicorn stopped (exit status {proc.returncode})")


def fold_loop(every: float, stop: threading.Event, folds: list[tuple[float, int]]) -> None:
    """Stand-in for the Celery worker: fold pending deltas every ``every`` seconds."""
    from django.db import connection

    from usage.ingestion.rollups import fold_all_deltas

    try:
        while not stop.wait(every):
            started = time.perf_counter()
            folded = fold_all_deltas()
            folds.append((time.perf_counter() - started, folded))
    finally:
        connection.close()


def sample_waits(url: str, every: float, stop: threading.Event, tally: dict[str, int]) -> None:
    """What the database's other sessions are doing, sampled from pg_stat_activity."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(every):
            rows = conn.execute(
                "SELECT state, wait_event_type, wait_event, left(query, 600) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchall()
            for state, wait_type, wait, query in rows:
                if state == "idle":
                    label = "idle (connection waiting for a request)"
                elif wait_type:
                    label = f"{state}: waiting {wait_type}/{wait}"
                else:
                    label = f"{state}: on CPU"
                if state != "idle" and query:
                    text = " ".join(query.split())
                    if text.startswith("SELECT set_config('pghistory"):
                        # pghistory's middleware prefixes every statement of a request with its context.
                        text = text.split("); ", 1)[-1] if "); " in text else text
                    label += f"  [{text[:45]}]"
                tally[label] = tally.get(label, 0) + 1


class CpuTimes:
    """CPU seconds used by groups of processes (gunicorn, the database backends, the clients)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.start = {name: self._times(pids) for name, pids in groups.items()}

    @staticmethod
    def _times(pids: list[int]) -> dict[int, float]:
        import psutil

        out = {}
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            out[pid] = times.user + times.system
        return out

    def used(self, groups: dict[str, list[int]]) -> dict[str, float]:
        result = {}
        for name, pids in groups.items():
            now = self._times(pids)
            before = self.start.get(name, {})
            result[name] = sum(t - before.get(pid, 0.0) for pid, t in now.items())
        return result


def process_groups(proc, workers, url: str) -> dict[str, list[int]]:
    import psutil
    import psycopg

    gunicorn = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    with psycopg.connect(url, autocommit=True) as conn:
        backends = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ]
    return {"gunicorn": gunicorn, "postgres": backends, "clients": [w.pid for w in workers]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api_ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="Measured seconds (default 30).")
    parser.add_argument("--warmup", type=float, default=5.0, help="Seconds before measuring (default 5).")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS_URL), help="gunicorn's REDIS_URL."
    )
    parser.add_argument(
        "--fold-every",
        type=float,
        default=0.0,
        help="Also fold rollup deltas every N seconds during the run, like the Celery worker would (default: off).",
    )
    parser.add_argument("--no-fold-after", action="store_true", help="Leave the run's deltas unfolded.")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.install_exit_on_sigterm()
    summary = common.Summary(NAME)
    url = common.setup()
    from revops.api_keys import api_key_create
    from usage.ingestion.rollups import fold_all_deltas, pending_delta_count

    common.heading(
        f"HTTP API: {args.clients} clients × {args.batch:,}-event batches for {args.duration:.0f} s "
        f"(+{args.warmup:.0f} s warm-up) into {common.database_name(url)}"
    )
    common.note(common.machine_line())
    common.note(common.code_version())
    population = Population(args.seed)
    population.ensure_reference_data()
    history = common.sql_one("SELECT count(*) FROM usage_eventkey")[0]
    common.note(f"dedupe keys already stored: {history:,}")
    run_id = f"{int(time.time()):x}"
    _key, token = api_key_create(name=f"bench {run_id}", scopes=["events:write"], rate_limit_per_minute=1_000_000_000)
    fragments = population.json_fragments(count=20_000, now=dt.datetime.now(dt.UTC))

    tmp = Path(tempfile.mkdtemp(prefix="revops-bench-api-"))
    log_path = tmp / "gunicorn.log"
    port = free_port()
    proc = None
    workers: list[multiprocessing.Process] = []
    stop_folding = threading.Event()
    folds: list[tuple[float, int]] = []
    folder = None
    stop_sampling = threading.Event()
    waits: dict[str, int] = {}
    try:
        proc = start_gunicorn(url, port, args.redis_url, log_path, args.workers, args.threads)
        common.note(f"gunicorn serving on 127.0.0.1:{port} (log: {log_path})")
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        begin = time.time() + 1.5  # let the spawned clients start
        measure_from = begin + args.warmup
        stop_at = measure_from + args.duration
        for i in range(args.clients):
            worker = ctx.Process(
                target=client,
                args=(i, port, token, fragments, args.batch, f"api-{run_id}-{i}-", measure_from, stop_at, results),
                daemon=True,
            )
            worker.start()
            workers.append(worker)
        if args.fold_every > 0:
            folder = threading.Thread(target=fold_loop, args=(args.fold_every, stop_folding, folds), daemon=True)
            folder.start()
        while time.time() < measure_from:
            time.sleep(0.05)
        cpu = common.MachineCpu()
        cpu_times = CpuTimes(process_groups(proc, workers, url))
        sampler = threading.Thread(target=sample_waits, args=(url, 0.1, stop_sampling, waits), daemon=True)
        sampler.start()
        collected = [results.get(timeout=args.warmup + args.duration + 180) for _ in workers]
        stop_sampling.set()
        cpu_line = cpu.report()
        cpu_used = cpu_times.used(process_groups(proc, [], url) | {"clients": [w.pid for w in workers]})
        cpu_until = time.time()
        for worker in workers:
            worker.join(timeout=10)
        stop_folding.set()
        if folder is not None:
            folder.join(timeout=300)
    finally:
        stop_folding.set()
        stop_sampling.set()
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        stop_gunicorn(proc)

    measured, statuses, errors, warm = [], {}, [], 0
    for _index, records, errs, _ in collected:
        errors.extend(errs)
        for started, ended, status, accepted in records:
            statuses[status] = statuses.get(status, 0) + 1
            if measure_from <= ended <= stop_at:
                measured.append((ended - started, status, accepted))
            elif ended < measure_from:
                warm += 1
    ok = [m for m in measured if m[1] == 200]
    events = len(ok) * args.batch
    accepted = sum(m[2] for m in ok)
    latencies = sorted(m[0] * 1000 for m in ok)
    rate = events / args.duration
    p50, p95, p99 = (percentile(latencies, p) for p in (0.5, 0.95, 0.99))
    worst = latencies[-1] if latencies else float("nan")

    common.note(cpu_line)
    acked_after = sum(
        1
        for _i, records, _e, _m in collected
        for started, ended, status, _a in records
        if status == 200 and ended >= measure_from
    )
    if acked_after:
        per_batch = {name: 1000 * seconds / acked_after for name, seconds in cpu_used.items()}
        common.note(
            f"CPU per {args.batch:,}-event batch over the window ({cpu_until - measure_from:.0f} s): "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in per_batch.items())
            + f" (total {sum(per_batch.values()):.0f} ms; {os.cpu_count()} cores)"
        )
        summary_cpu = " / ".join(f"{ms:.0f}" for ms in per_batch.values())
    common.note(
        f"{len(ok):,} batches acknowledged in the {args.duration:.0f} s window ({warm} during warm-up); "
        f"HTTP statuses over the whole run: {statuses}"
    )
    common.note(f"sustained: {rate:,.0f} events/s ({accepted / args.duration:,.0f} accepted/s)")
    common.note(
        f"acknowledgement latency per {args.batch:,}-event batch: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
        f"p99 {p99:.0f} ms, max {worst:.0f} ms, mean {statistics.fmean(latencies) if latencies else float('nan'):.0f} ms"
    )
    samples = sum(waits.values())
    if samples:
        common.note("database sessions of this database, sampled every 100 ms during the window:")
        for label, n in sorted(waits.items(), key=lambda kv: -kv[1])[:12]:
            print(f"    {100 * n / samples:5.1f} %  {label}")
    for error in errors[:5]:
        common.note(f"error: {error}")
    log_text = log_path.read_text(errors="replace")
    tracebacks = log_text.count("Traceback")
    if tracebacks:
        common.note(f"gunicorn log: {tracebacks} traceback(s), kept at {log_path}; the last 2,000 characters:")
        print(log_text[-2000:])
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if folds:
        common.note(
            f"concurrent folds: {len(folds)}, {sum(f[1] for f in folds):,} delta rows, "
            f"longest {max(f[0] for f in folds):.2f} s"
        )

    summary.check("sustained events/s", f"{rate:,.0f}/s", f"≥ {BUDGET_RATE:,}/s", rate >= BUDGET_RATE)
    summary.check("p99 ack latency / batch", f"{p99:.0f} ms", f"< {BUDGET_P99_MS} ms", p99 < BUDGET_P99_MS)
    summary.info("p50 / p95 / max latency", f"{p50:.0f} / {p95:.0f} / {worst:.0f} ms")
    if acked_after:
        summary.info("CPU ms per batch: gunicorn / postgres / clients", summary_cpu)
    non_ok = sum(n for s, n in statuses.items() if s != 200)
    summary.check("non-200 answers", f"{non_ok}", "0", non_ok == 0)
    deadlocks = log_text.count("deadlock detected")
    if deadlocks:
        summary.info("deadlocks in gunicorn log", f"{deadlocks}")
    if args.fold_every > 0:
        summary.info("concurrent fold every", f"{args.fold_every:g} s ({len(folds)} folds)")

    if not args.no_fold_after:
        pending = pending_delta_count()
        started = time.perf_counter()
        folded = fold_all_deltas()
        seconds = time.perf_counter() - started
        common.note(f"after the run: folded {folded:,} pending delta rows (of {pending:,}) in {seconds:.2f} s")
        summary.info("fold of the run's deltas", f"{folded:,} rows in {seconds:.1f} s")

    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
