"""The embedded PostgreSQL outlives no one: a SIGKILLed user's server is adopted and stopped.

pgserver counts the processes using a server in ``<pgdata>/.handle_pids.json`` and the
last one to exit stops it. A process killed with SIGKILL never removes its PID, so
``devservices`` prunes dead PIDs before attaching. These tests run real processes
against a throw-away pgdata; no Django database is involved.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from revops import devservices

START_TIMEOUT_S = 120  # initdb plus the first start take a few seconds; CI machines are slow

# Prints the embedded server's URL, then either holds the server or runs one query and exits.
ATTACH = """
import sys, time
import psycopg
from revops import devservices
url = devservices.embedded_postgres_url()
print(url, flush=True)
if sys.argv[1] == "hold":
    time.sleep(600)
else:
    with psycopg.connect(url) as conn:
        print(conn.execute("SELECT 1").fetchone()[0], flush=True)
"""


def _env(pgdata: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["REVOPS_PGDATA"] = str(pgdata)
    return env


def _attach(pgdata: Path, mode: str) -> tuple[list[str], dict]:
    """Arguments for a process that uses the embedded server in ``pgdata`` (see ATTACH)."""
    return [sys.executable, "-c", ATTACH, mode], {"cwd": devservices.BASE_DIR, "env": _env(pgdata)}


def _handles(pgdata: Path) -> list[int]:
    return json.loads((pgdata / devservices.HANDLES_FILE).read_text())


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postmaster(pgdata: Path) -> psutil.Process | None:
    """The running postmaster according to ``postmaster.pid``, if there is one."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        proc = psutil.Process(int(pid_file.read_text().split()[0]))
    except (psutil.NoSuchProcess, ValueError, IndexError):
        return None
    return proc if _alive(proc) else None


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Every live postgres process whose command line names this pgdata."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in (proc.info["cmdline"] or []) and _alive(proc):
            found.append(proc)
    return found


def _read_line(proc: subprocess.Popen, timeout: float, stderr_path: Path) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if ready else ""
    if not line:
        proc.kill()
        pytest.fail(f"The process printed no URL within {timeout}s:\n{stderr_path.read_text()}", pytrace=False)
    return line


def _run_to_completion(pgdata: Path, stderr_path: Path) -> list[str]:
    args, kwargs = _attach(pgdata, "query")
    with stderr_path.open("w") as stderr:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=START_TIMEOUT_S,
            **kwargs,
        )
    assert done.returncode == 0, stderr_path.read_text()
    return done.stdout.split()


@pytest.fixture
def pgdata(tmp_path_factory):
    """A pgdata path of its own; whatever the test leaves running is stopped afterwards."""
    path = tmp_path_factory.mktemp("embedded") / "pgdata"
    yield path
    for proc in _postgres_processes(path):
        proc.kill()


@pytest.mark.slow
def test_a_server_orphaned_by_sigkill_is_adopted_and_stopped_by_the_next_process(pgdata, tmp_path):
    # 1. A process starts the server and is killed without a chance to clean up.
    args, kwargs = _attach(pgdata, "hold")
    with (tmp_path / "holder.err").open("w") as stderr:
        holder = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True, **kwargs
        )
    try:
        url = _read_line(holder, START_TIMEOUT_S, tmp_path / "holder.err")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("revops",)
        server = _postmaster(pgdata)
        assert server is not None
        assert _handles(pgdata) == [holder.pid]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()

    # The orphan: the server runs on, and pgserver still counts the dead process.
    assert _postmaster(pgdata) is not None
    assert _alive(server)
    assert holder.pid in _handles(pgdata)

    # 2. The next process prunes the dead PID, is the last handle and stops the server.
    assert _run_to_completion(pgdata, tmp_path / "second.err")[1:] == ["1"]
    assert _handles(pgdata) == []
    assert _postmaster(pgdata) is None
    assert not (pgdata / "postmaster.pid").exists()
    assert not _alive(server)
    assert _postgres_processes(pgdata) == []

    # 3. And the server starts again from the same pgdata, and stops again cleanly.
    started = time.monotonic()
    assert _run_to_completion(pgdata, tmp_path / "third.err")[1:] == ["1"]
    assert time.monotonic() - started < START_TIMEOUT_S
    assert _handles(pgdata) == []
    assert _postmaster(pgdata) is None
    assert _postgres_processes(pgdata) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_prune_dead_handles_keeps_live_pids_and_drops_dead_ones(tmp_path):
    dead = _dead_pid()
    (tmp_path / devservices.HANDLES_FILE).write_text(json.dumps([os.getpid(), dead]))

    assert devservices.prune_dead_handles(tmp_path) == [os.getpid()]
    assert _handles(tmp_path) == [os.getpid()]


def test_prune_dead_handles_drops_a_zombie(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not reaped until wait()
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (tmp_path / devservices.HANDLES_FILE).write_text(json.dumps([zombie.pid, os.getpid()]))

        assert devservices.prune_dead_handles(tmp_path) == [os.getpid()]
    finally:
        zombie.wait()


@pytest.mark.parametrize("torn", ["[4242, 43", ""], ids=["cut-short", "empty"])
def test_prune_dead_handles_treats_a_torn_file_as_no_handles(tmp_path, torn):
    (tmp_path / devservices.HANDLES_FILE).write_text(torn)  # a write cut short by SIGKILL

    assert devservices.prune_dead_handles(tmp_path) == []


@pytest.mark.parametrize("torn", ["[4242, 43", ""], ids=["cut-short", "empty"])
def test_prune_dead_handles_repairs_a_torn_file_so_pgserver_can_read_it(tmp_path, torn):
    (tmp_path / devservices.HANDLES_FILE).write_text(torn)

    devservices.prune_dead_handles(tmp_path)

    assert _handles(tmp_path) == []  # pgserver reads the file exactly like this


def test_prune_dead_handles_leaves_a_missing_file_missing(tmp_path):
    assert devservices.prune_dead_handles(tmp_path) == []
    assert not (tmp_path / devservices.HANDLES_FILE).exists()


# --- The embedded Redis ------------------------------------------------------------------
# Same contract as the embedded PostgreSQL: shared by every process that attaches, stopped
# by the last one, and an orphan left by a SIGKILLed owner is adopted and stopped by the
# next. Each test has a directory (and so a server) of its own, never the machine's Redis.

REDIS_ATTACH = """
import sys, time
import redis
from revops import devservices
devservices.stop_on_signals()
url = devservices.redis_url()
client = redis.Redis.from_url(url)
if sys.argv[1] == "hold":
    client.set("held-by", "first")
    print(url, flush=True)
    time.sleep(600)
else:
    print(url, flush=True)
    print(client.get("held-by").decode() if client.get("held-by") else "-", flush=True)
"""


def _redis_env(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["REVOPS_REDIS_DIR"] = str(directory)
    return env


def _redis_process(directory: Path, mode: str, stderr) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", REDIS_ATTACH, mode],
        cwd=devservices.BASE_DIR,
        env=_redis_env(directory),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


@pytest.fixture
def redis_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("embedded") / "redis"
    yield path
    server = devservices.EmbeddedRedis(path)
    if (pid := server.server_pid()) is not None:
        os.kill(pid, signal.SIGKILL)


def test_the_embedded_redis_is_shared_and_stopped_by_the_last_process(redis_dir, tmp_path):
    server = devservices.EmbeddedRedis(redis_dir)
    with (tmp_path / "holder.err").open("w") as stderr:
        holder = _redis_process(redis_dir, "hold", stderr)
    try:
        url = _read_line(holder, START_TIMEOUT_S, tmp_path / "holder.err")
        assert url.startswith("redis://:") and "@127.0.0.1:" in url  # a password, loopback only
        assert server.handles() == [holder.pid]
        # A second process attaches to the same server and sees what the first wrote.
        with (tmp_path / "second.err").open("w") as stderr:
            second = _redis_process(redis_dir, "read", stderr)
            out, _ = second.communicate(timeout=START_TIMEOUT_S)
        assert out.split() == [url, "first"]
        assert server.handles() == [holder.pid]  # the second detached; the holder still counts
        assert server.server_pid() is not None
    finally:
        holder.terminate()  # SIGTERM: a normal exit, so it detaches as the last user
        holder.wait(timeout=30)
        holder.stdout.close()
    assert server.handles() == []
    assert server.server_pid() is None


@pytest.mark.slow
def test_an_embedded_redis_orphaned_by_sigkill_is_adopted_and_stopped_by_the_next_process(redis_dir, tmp_path):
    server = devservices.EmbeddedRedis(redis_dir)
    with (tmp_path / "holder.err").open("w") as stderr:
        holder = _redis_process(redis_dir, "hold", stderr)
    try:
        url = _read_line(holder, START_TIMEOUT_S, tmp_path / "holder.err")
        orphan = server.server_pid()
        assert orphan is not None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()

    # The orphan: the server runs on, its dead owner still listed.
    assert server.server_pid() == orphan
    assert json.loads(server.handles_file.read_text()) == [holder.pid]

    # The next process adopts the same server (same URL, same data) and, being the last
    # live user, stops it when it exits.
    with (tmp_path / "next.err").open("w") as stderr:
        nxt = _redis_process(redis_dir, "read", stderr)
        out, _ = nxt.communicate(timeout=START_TIMEOUT_S)
    assert nxt.returncode == 0, (tmp_path / "next.err").read_text()
    assert out.split() == [url, "first"]
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
    assert server.server_pid() is None
    assert json.loads(server.handles_file.read_text()) == []

    # And it starts again from the same directory, with the data it saved on shutdown.
    with (tmp_path / "third.err").open("w") as stderr:
        third = _redis_process(redis_dir, "read", stderr)
        out, _ = third.communicate(timeout=START_TIMEOUT_S)
    assert out.split()[1:] == ["first"]
    assert server.server_pid() is None
