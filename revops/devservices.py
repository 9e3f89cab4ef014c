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
