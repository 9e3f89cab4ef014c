"""Streaming replication, the read router and PgBouncer, end to end (revops/replica.py).

Everything is real and started here, under one temporary directory: a primary cluster
(wal_level=replica, a replication role), a standby made with ``pg_basebackup -R`` and
streaming from it, PgBouncer in transaction pooling mode in front of the primary, and the
app in gunicorn configured by environment variables only, as in production:
DATABASE_URL is PgBouncer, DATABASE_REPLICA_URL the standby, DATABASE_POOLING=transaction.
The project's schema is migrated through PgBouncer.

Which copy served a page is shown by what it says: with the standby's replay paused, a
change made on the primary is on the page only if the page was read from the primary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from tests.conftest import require
from tests.factories import TEST_PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent
PG_BIN = Path(importlib.util.find_spec("pgserver").origin).parent / "pginstall" / "bin"
PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
DATABASE = "revops_repl"
ACCOUNT = "ACME-1"
WRITER = "writer@example.test"
READER = "reader@example.test"
MAX_LAG_S = 10  # the app's REPLICA_MAX_LAG_S: short, so the lag test waits only this long
# PostgreSQL refuses to run as root; as root the clusters and PgBouncer run as the same
# unprivileged user as the embedded server (revops/devservices.py, via pgserver).
RUN_AS = "pgserver" if os.geteuid() == 0 else None


@dataclass
class Stack:
    tmp: Path
    primary_port: int
    standby_port: int
    bouncer_port: int | None
    web_port: int = 0
    api_key: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def primary(self, dbname: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.primary_port, user="postgres", dbname=dbname, autocommit=True
        )

    def standby(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.standby_port, user="postgres", dbname=DATABASE, autocommit=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"


# --- Starting and stopping the parts ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres_user() -> dict:
    return {"user": RUN_AS, "group": RUN_AS} if RUN_AS else {}


def _pg(tool: str, *args: str, cwd: Path) -> None:
    result = subprocess.run(
        [str(PG_BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=120, **_as_postgres_user()
    )
    assert result.returncode == 0, f"{tool} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def _wait_for(what: str, condition, *, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if value := condition():
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _start_primary(stack: Stack) -> None:
    data = stack.tmp / "primary"
    _pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions", cwd=stack.tmp)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {stack.primary_port}\n"
            f"unix_socket_directories = '{stack.tmp}'\nwal_level = replica\nmax_wal_senders = 4\n"
            "fsync = off\ntimezone = 'UTC'\nmax_connections = 60\n"
        )
    hba = data / "pg_hba.conf"
    hba.write_text("host replication replicator 127.0.0.1/32 trust\n" + hba.read_text())
    _pg("pg_ctl", "-D", str(data), "-l", str(stack.tmp / "primary.log"), "-w", "start", cwd=stack.tmp)
    with stack.primary("postgres") as conn:
        conn.execute("CREATE ROLE replicator REPLICATION LOGIN")
        conn.execute(f"CREATE DATABASE {DATABASE}")
        conn.execute("CREATE TABLE heartbeat (at timestamptz NOT NULL)")


def _start_standby(stack: Stack) -> None:
    data = stack.tmp / "standby"
    _pg(
        "pg_basebackup",
        *("-h", "127.0.0.1", "-p", str(stack.primary_port), "-U", "replicator"),
        *("-D", str(data), "-R", "-X", "stream", "-c", "fast"),
        cwd=stack.tmp,
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {stack.standby_port}\n")
    _start_standby_server(stack)


def _start_standby_server(stack: Stack) -> None:
    _pg("pg_ctl", "-D", str(stack.tmp / "standby"), "-l", str(stack.tmp / "standby.log"), "-w", "start", cwd=stack.tmp)
    with stack.primary() as conn:
        _wait_for(
            "the standby to stream",
            lambda: conn.execute("SELECT state FROM pg_stat_replication").fetchall() == [("streaming",)],
        )


def _start_pgbouncer(stack: Stack) -> None:
    (stack.tmp / "userlist.txt").write_text('"postgres" ""\n')
    (stack.tmp / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{DATABASE} = host=127.0.0.1 port={stack.primary_port} dbname={DATABASE}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {stack.bouncer_port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {stack.tmp / 'userlist.txt'}\nadmin_users = postgres\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        # revops.settings.test sends `options` (the suite's TRUNCATE switch) at connect,
        # which PgBouncer 1.18 refuses: dropped here; nothing the app serves needs it.
        "ignore_startup_parameters = options\n"
        f"logfile = {stack.tmp / 'pgbouncer.log'}\npidfile = {stack.tmp / 'pgbouncer.pid'}\n"
    )
    stack.processes["pgbouncer"] = subprocess.Popen(
        [PGBOUNCER, str(stack.tmp / "pgbouncer.ini")],
        cwd=stack.tmp,
        stdout=subprocess.DEVNULL,
        stderr=(stack.tmp / "pgbouncer.err").open("w"),
        **_as_postgres_user(),
    )
    _wait_for(
        "PgBouncer to listen", lambda: socket.create_connection(("127.0.0.1", stack.bouncer_port), 1).close() or 1
    )


def _app_env(stack: Stack) -> dict[str, str]:
    if stack.bouncer_port:
        primary = f"postgres://postgres@127.0.0.1:{stack.bouncer_port}/{DATABASE}"
    else:
        primary = f"postgres://postgres@127.0.0.1:{stack.primary_port}/{DATABASE}"
    redis_url = os.environ.get("REDIS_URL", "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "DATABASE_URL": f"{primary}?application_name=revops-web",
        "DATABASE_REPLICA_URL": f"postgres://postgres@127.0.0.1:{stack.standby_port}/{DATABASE}"
        "?application_name=revops-web",
        "DATABASE_POOLING": "transaction" if stack.bouncer_port else "session",
        "REPLICA_MAX_LAG_S": str(MAX_LAG_S),
        "LOG_LEVEL": "WARNING",
    }
    if redis_url:  # the broker in this run's own Redis database; the cache is test.py's
        env["CELERY_BROKER_URL"] = redis_url
    return env


def _manage(stack: Stack, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_app_env(stack),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


SEED = f"""
from accounts.models import Account
from revops.models import Role, User
for email in ({WRITER!r}, {READER!r}):
    User.objects.create_user(email, {TEST_PASSWORD!r}, name=email.split("@")[0].title(), role=Role.LEADER)
Account.objects.create(external_id={ACCOUNT!r}, name="Acme Original", segment="enterprise")
from revops.api_keys import api_key_create
_, secret = api_key_create(name="probe", scopes=["read"], created_by=User.objects.get(email={READER!r}))
print("API_KEY", secret)
"""


def _start_web(stack: Stack) -> None:
    stack.web_port = _free_port()
    stack.processes["web"] = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            *("revops.wsgi:application", "--bind", f"127.0.0.1:{stack.web_port}"),
            *("--workers", "1", "--threads", "4", "--timeout", "120", "--graceful-timeout", "2"),
        ],
        cwd=ROOT,
        env=_app_env(stack),
        stdout=subprocess.DEVNULL,
        stderr=(stack.tmp / "web.log").open("w"),
    )
    _wait_for("the app to answer", lambda: httpx.get(f"{stack.url}/health", timeout=5).status_code, timeout=60)


def _stop(stack: Stack) -> None:
    for process in stack.processes.values():
        process.send_signal(signal.SIGQUIT if process is stack.processes.get("web") else signal.SIGTERM)
    for process in stack.processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    for name in ("standby", "primary"):
        if (stack.tmp / name / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError):
                _pg("pg_ctl", "-D", str(stack.tmp / name), "-m", "immediate", "-w", "stop", cwd=stack.tmp)
    shutil.rmtree(stack.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def stack():
    tmp = Path(tempfile.mkdtemp(prefix="revops-replication-"))
    if RUN_AS:
        with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset
            warnings.simplefilter("ignore")
            from pgserver.utils import ensure_user_exists

        ensure_user_exists(RUN_AS)
        shutil.chown(tmp, RUN_AS, RUN_AS)
    stack = Stack(tmp, _free_port(), _free_port(), _free_port() if PGBOUNCER else None)
    try:
        started = time.monotonic()
        _start_primary(stack)
        _start_standby(stack)
        if PGBOUNCER:
            _start_pgbouncer(stack)
        stack.timings["clusters"] = time.monotonic() - started
        started = time.monotonic()
        _manage(stack, "migrate", "--noinput", "-v", "0")
        stack.timings["migrate"] = time.monotonic() - started
        stack.api_key = _manage(stack, "shell", "-c", SEED).split("API_KEY ")[1].strip()
        started = time.monotonic()
        _start_web(stack)
        stack.timings["web"] = time.monotonic() - started
        yield stack
    finally:
        _stop(stack)
        print(f"\nreplication stack timings: { {k: round(v, 1) for k, v in stack.timings.items()} }")


# --- Driving the site ------------------------------------------------------------------------


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


def _logged_in(stack: Stack, email: str) -> httpx.Client:
    client = httpx.Client(base_url=stack.url, timeout=30)
    form = client.get("/auth/login/").text
    response = client.post(
        "/auth/login/",
        data={"login": email, "password": TEST_PASSWORD, "csrfmiddlewaretoken": _hidden(form, "csrfmiddlewaretoken")},
    )
    assert response.status_code == 302, response.text[:500]
    return client


def _page(client: httpx.Client) -> str:
    response = client.get(f"/accounts/{ACCOUNT}/")
    assert response.status_code == 200, response.text[:500]
    return response.text


def _account_name(client: httpx.Client) -> str:
    return re.search(r"<h1>([^<]*)</h1>", _page(client)).group(1)


def _log_activity(client: httpx.Client, notes: str) -> httpx.Response:
    page = _page(client)
    return client.post(
        f"/accounts/{ACCOUNT}/activities/",
        data={
            "csrfmiddlewaretoken": _hidden(page, "csrfmiddlewaretoken"),
            "submission": _hidden(page, "submission"),
            "occurred_on": dt.datetime.now(dt.UTC).date().isoformat(),
            "kind": "call",
            "notes": notes,
            "tags": "",
        },
    )


def _rename_on_primary(stack: Stack, name: str) -> None:
    """A change made behind the app's back: no browser holds its WAL position."""
    with stack.primary() as conn:
        assert (
            conn.execute("UPDATE accounts_account SET name = %s WHERE external_id = %s", [name, ACCOUNT]).rowcount == 1
        )


def _caught_up(stack: Stack) -> None:
    with stack.primary() as primary, stack.standby() as standby:
        target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        _wait_for(
            "the standby to replay",
            lambda: standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0],
        )


@contextlib.contextmanager
def _replay_paused(stack: Stack):
    """The standby stops applying WAL (it keeps receiving it) until the block ends.

    A commit replayed just before the pause makes the measured lag start from now: the
    lag is the age of the last replayed commit once WAL is waiting.
    """
    with stack.primary("postgres") as conn:
        conn.execute("INSERT INTO heartbeat VALUES (now())")
    _caught_up(stack)
    with stack.standby() as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        _wait_for(
            "replay to pause",
            lambda: standby.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused",
        )
        try:
            yield
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    _caught_up(stack)


# --- The tests -------------------------------------------------------------------------------


CONFIG = """
import json
from django.conf import settings
from django.db import router
from accounts.models import Account
auth = settings.MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
print(json.dumps({
    "routers": settings.DATABASE_ROUTERS,
    "after_auth": settings.MIDDLEWARE[auth + 1],
    "no_server_side_cursors": [settings.DATABASES[a].get("DISABLE_SERVER_SIDE_CURSORS", False) for a in ("default", "replica")],
    "prepare_threshold": [settings.DATABASES[a].get("OPTIONS", {}).get("prepare_threshold", "unset") for a in ("default", "replica")],
    "replica_in_tests": settings.DATABASES["replica"]["TEST"]["MIRROR"],
    "reads_outside_requests": router.db_for_read(Account),
    "migrates": [a for a in ("default", "replica") if router.allow_migrate(a, "accounts", model_name="account")],
}))
"""


def test_the_environment_alone_turns_on_the_replica_and_transaction_pooling(stack):
    config = json.loads(_manage(stack, "shell", "-c", CONFIG).splitlines()[-1])

    assert config == {
        "routers": ["revops.replica.ReplicaRouter"],
        "after_auth": "revops.replica.ReplicaMiddleware",
        "no_server_side_cursors": [True, True] if PGBOUNCER else [False, False],
        "prepare_threshold": [None, None] if PGBOUNCER else ["unset", "unset"],  # Django's default is None too
        "replica_in_tests": "default",  # the suite's own tests see one database
        "reads_outside_requests": "default",  # a command, a task: the primary
        "migrates": ["default"],
    }


def test_pages_read_from_the_replica_and_the_writer_reads_its_own_write(stack):
    writer, reader = _logged_in(stack, WRITER), _logged_in(stack, READER)
    _caught_up(stack)
    note = f"Call about renewal {uuid.uuid4().hex[:8]}"

    with _replay_paused(stack):
        started = time.monotonic()
        posted = _log_activity(writer, note)
        assert posted.status_code == 302
        assert "revops_read_after" in writer.cookies  # the primary's WAL position after the write
        with stack.primary() as conn:
            assert conn.execute("SELECT count(*) FROM accounts_activity WHERE notes = %s", [note]).fetchone()[0] == 1
        with stack.standby() as conn:
            assert conn.execute("SELECT count(*) FROM accounts_activity WHERE notes = %s", [note]).fetchone()[0] == 0

        # (a) Someone else's page is read from the replica, which has not replayed it.
        assert note not in _page(reader)
        # (b) The writer's is read from the primary: the replica is behind its cookie,
        # which stays until the replica has caught up.
        assert note in _page(writer)
        assert "revops_read_after" in writer.cookies
        assert time.monotonic() - started < MAX_LAG_S, "too slow to tell lag from the pin"

    # (c) Replayed: both read the replica again, which now has it; the pin is dropped.
    assert note in _page(reader)
    assert note in _page(writer)
    assert "revops_read_after" not in writer.cookies

    # … and it is the replica they read: a change it has not replayed is not on the page.
    with _replay_paused(stack):
        _rename_on_primary(stack, "Acme Renamed")
        assert _account_name(writer) == "Acme Original"
        assert _account_name(reader) == "Acme Original"
    assert _account_name(writer) == "Acme Renamed"


def test_a_replica_lagging_past_the_limit_is_left_for_the_primary(stack):
    client = _logged_in(stack, READER)
    _rename_on_primary(stack, "Acme Before Lag")
    _caught_up(stack)

    with _replay_paused(stack):
        _rename_on_primary(stack, "Acme During Lag")
        assert _account_name(client) == "Acme Before Lag"  # replica, a second or so behind
        health = _wait_for(
            "the replica to lag past the limit",
            lambda: (body := httpx.get(f"{stack.url}/health").json())["replica"]["status"] == "lagging" and body,
            timeout=MAX_LAG_S + 20,
            interval=0.5,
        )
        assert health["replica"]["lag_seconds"] > MAX_LAG_S
        assert health["status"] == "degraded"
        assert _account_name(client) == "Acme During Lag"  # the primary

    _wait_for(
        "the replica to be usable again",
        lambda: httpx.get(f"{stack.url}/health").json()["replica"] == {"status": "ok", "lag_seconds": 0.0},
    )


def test_the_api_reads_from_the_primary_so_a_revoked_key_stops_at_once(stack):
    # API clients keep no cookie to carry a pin: the API never reads from the replica.
    def metrics() -> int:
        url = f"{stack.url}/api/v1/accounts/{ACCOUNT}/metrics"
        return httpx.get(url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=30).status_code

    assert metrics() == 200
    with _replay_paused(stack):
        with stack.primary() as conn:
            assert conn.execute("UPDATE revops_apikey SET revoked_at = now()").rowcount == 1
        with stack.standby() as conn:  # the replica still holds it as valid
            assert conn.execute("SELECT count(*) FROM revops_apikey WHERE revoked_at IS NULL").fetchone()[0] == 1
        assert metrics() == 401


def test_the_app_reaches_the_primary_only_through_pgbouncer(stack):
    require(PGBOUNCER is not None, "PgBouncer", install="Install Debian's pgbouncer (apt-get install pgbouncer).")
    client = _logged_in(stack, WRITER)
    assert _log_activity(client, "through the pooler").status_code == 302
    assert _page(client)

    (worker,) = psutil.Process(stack.processes["web"].pid).children()
    remote_ports = [(c.raddr.port, c.laddr.port) for c in worker.net_connections(kind="tcp") if c.raddr]
    to_bouncer = {local for remote, local in remote_ports if remote == stack.bouncer_port}
    assert to_bouncer, remote_ports
    assert [remote for remote, _ in remote_ports if remote == stack.primary_port] == []
    assert any(remote == stack.standby_port for remote, _ in remote_ports)  # the replica, directly

    psql = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(stack.bouncer_port), "-U", "postgres", "-AtF,"]
    admin = subprocess.run(
        [*psql, "-c", "SHOW CLIENTS", "-c", "SHOW CONFIG", "pgbouncer"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    clients = {int(row.split(",")[5]) for row in admin.splitlines() if f",{DATABASE}," in row}
    assert to_bouncer <= clients  # every connection of the app's is one of PgBouncer's clients
    assert "pool_mode,transaction," in admin

    # On the primary, the app's sessions (PgBouncer passes application_name on) all come
    # from PgBouncer's own sockets.
    bouncer_ports = {
        c.laddr.port
        for c in psutil.Process(stack.processes["pgbouncer"].pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == stack.primary_port
    }
    with stack.primary() as conn:
        app_ports = {
            port
            for (port,) in conn.execute(
                "SELECT client_port FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                [DATABASE],
            )
        }
    assert app_ports
    assert app_ports <= bouncer_ports


def test_pages_still_answer_from_the_primary_while_the_replica_is_down(stack):
    client = _logged_in(stack, READER)
    _pg("pg_ctl", "-D", str(stack.tmp / "standby"), "-m", "fast", "-w", "stop", cwd=stack.tmp)
    try:
        _rename_on_primary(stack, "Acme Primary Only")
        assert _account_name(client) == "Acme Primary Only"
        assert _account_name(client) == "Acme Primary Only"
        response = httpx.get(f"{stack.url}/health")
        assert response.status_code == 200
        assert response.json()["replica"] == {"status": "down"}
        assert response.json()["database"] == {"status": "ok"}
    finally:
        _start_standby_server(stack)
    _caught_up(stack)
    log = (stack.tmp / "web.log").read_text()
    assert "Read replica unavailable, pages read from the primary: OperationalError" in log
    assert "Internal Server Error" not in log  # no page of the whole module failed
