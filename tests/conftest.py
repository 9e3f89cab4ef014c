"""Fixtures shared by every app's tests.

Real parts only: PostgreSQL and Redis (the machine's when DATABASE_URL / REDIS_URL say so,
else the project's embedded ones), real Celery worker processes and headless Chromium.
Only the browser tests may skip, on a developer's machine without Chromium; in CI
(CI=true) they fail instead, so a green CI run really exercised everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from celery import Celery
from django.core.cache import cache

from revops.devservices import with_redis_db
from revops.models import Role
from tests.factories import TeamFactory, UserFactory

pytest_plugins = ["tests.browser"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to
# run where a loop is running unless told it is fine (the live server is another thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def require(condition: bool, what: str, *, install: str) -> None:
    """Skip locally, fail in CI, when a part that cannot be embedded is missing.

    Only Debian's Chromium is such a part: PostgreSQL and Redis are started by the project
    itself when DATABASE_URL / REDIS_URL are unset, so nothing else ever skips.
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true) but is not available. {install}", pytrace=False)
    pytest.skip(f"{what} is not installed. {install}")


@pytest.fixture
def redis_url() -> str:
    """The Redis every process of this run uses: REDIS_URL's, or the embedded one."""
    from django.conf import settings

    return settings.REDIS_URL


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and TOTP replay markers must not leak between tests (the
    cache is this process's own Redis database, see revops/settings/test.py)."""
    cache.clear()


# Tables written with raw SQL (no Django model manages them): Django's flush after a
# transactional test does not empty them, so we do.
RAW_TABLES = ("usage_event", "usage_eventkey", "usage_rollupdelta")


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(
        {"transactional_db", "live_server"} & set(request.fixturenames) or (marker and marker.kwargs.get("transaction"))
    )


@pytest.fixture(autouse=True)
def _empty_raw_tables_after_transactional_tests(request):
    yield
    if _is_transactional(request):
        from django.db import connection

        with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(RAW_TABLES)}")


@pytest.fixture
def team(db):
    return TeamFactory(name="Sales East")


@pytest.fixture
def make_user(db):
    def make(role: str = Role.AE, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def ae(make_user, team):
    return make_user(Role.AE, team=team, name="Avery Exec", email="ae@example.test")


@pytest.fixture
def with_totp():
    """Give a user a TOTP authenticator; returns a function that makes a valid code."""
    from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value

    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

    def activate(user):
        TOTP.activate(user, secret)

        def code() -> str:
            import time

            return format_hotp_value(hotp_value(secret, int(time.time()) // 30))

        return code

    return activate


# --- A real Celery worker process -------------------------------------------------------
# ``celery_worker(broker_url, ...)`` starts ``celery -A revops worker`` against the *test*
# database and the given broker, waits until it answers a ping and stops it after the
# test. While it runs, the test's current Celery app publishes to that broker, so
# ``some_shared_task.delay()`` from code under test reaches the worker.
#
# The worker commits in its own connection: a test whose task touches the database must
# use ``@pytest.mark.django_db(transaction=True)`` (``db`` wraps the test in a transaction
# the worker never sees).

CELERY_BIN = Path(sys.executable).with_name("celery")
WORKER_START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 15.0
# Settings of revops.celery.app the publishing side must share with the worker.
_CLIENT_CONF_KEYS = (
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
_PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_PHASE_REPORTS, {})[report.when] = report
    return report


def _test_failed(node: pytest.Item) -> bool:
    return any(report.failed for report in node.stash.get(_PHASE_REPORTS, {}).values())


def worker_database_url() -> str:
    """A DATABASE_URL for the database this test run uses (after ``django_db_setup``)."""
    from django.db import connection

    db = connection.settings_dict
    query: dict[str, str] = {
        key: str(value)
        for key, value in (db.get("OPTIONS") or {}).items()
        if isinstance(value, str | int) and not isinstance(value, bool)
    }
    host, port = str(db.get("HOST") or ""), str(db.get("PORT") or "")
    if host.startswith("/"):  # a unix-socket directory goes in the query, not the netloc
        query["host"] = host
        host = ""
        if port:
            query["port"] = port
            port = ""
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    netloc = (f"{auth}@" if auth else "") + host + (f":{port}" if port else "")
    url = f"postgresql://{netloc}/{quote(db['NAME'], safe='')}"
    return f"{url}?{urlencode(query, safe='/')}" if query else url


def isolated_redis_url(url: str) -> str:
    """``url`` with this test process's database for worker brokers (see revops/settings/test.py)."""
    from django.conf import settings

    return with_redis_db(url, settings.TEST_REDIS_DB + 2)


@pytest.fixture
def celery_redis_url(redis_url: str) -> str:
    """An emptied Redis database for a worker's broker and results (not REDIS_URL's own)."""
    import redis

    url = isolated_redis_url(redis_url)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


@dataclass
class CeleryWorker:
    """A running ``celery worker`` process and a Celery app that publishes to it."""

    app: Celery
    process: subprocess.Popen
    log_path: Path
    log_reported: bool = False

    def call(self, name: str, *args, timeout: float = 30, **kwargs):
        """Run task ``name`` on the worker and return its result."""
        return self.app.send_task(name, args=args, kwargs=kwargs).get(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def celery_worker(request: pytest.FixtureRequest, tmp_path: Path):
    """Factory: ``celery_worker(broker_url, result_backend=..., env=...)``.

    ``result_backend`` defaults to the broker URL. ``env`` adds to or overrides the
    worker's environment (a value of None removes the variable). Each call starts one worker (solo pool, so tasks
    run one at a time, in order); all are stopped after the test.
    """
    from celery import current_app
    from celery.exceptions import TimeoutError as CeleryTimeout
    from django.apps import apps
    from django.db import connection

    from revops.celery import app as project_app

    # The worker must use the test database, never the development one.
    request.getfixturevalue("django_db_setup")
    previous_app = current_app._get_current_object()
    started: list[CeleryWorker] = []

    def start(
        broker_url: str,
        *,
        result_backend: str | None = None,
        env: dict[str, str | None] | None = None,
        timeout: float = WORKER_START_TIMEOUT_S,
    ) -> CeleryWorker:
        if connection.in_atomic_block:
            pytest.fail(
                "celery_worker needs @pytest.mark.django_db(transaction=True) (or no database access): "
                "the worker cannot see rows written inside the test's transaction.",
                pytrace=False,
            )
        result_backend = result_backend or broker_url
        worker_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "revops.settings.test",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_RESULT_BACKEND": result_backend,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        worker_env = {key: value for key, value in worker_env.items() if value is not None}  # None unsets
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        log_path = tmp_path / f"celery-worker-{len(started)}.log"
        command = [CELERY_BIN, "-A", "revops", "worker", "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO"]
        # A lone worker has no neighbours to sync with; mingle alone costs a second per start.
        command += ["--without-mingle", "--without-gossip"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, "--hostname", name],
                cwd=Path(__file__).resolve().parent.parent,
                env=worker_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = Celery("revops-test-client", set_as_current=False)
        client.conf.update(
            {key: project_app.conf[key] for key in _CLIENT_CONF_KEYS},
            broker_url=broker_url,
            result_backend=result_backend,
        )
        client.autodiscover_tasks([config.name for config in apps.get_app_configs()], force=True)
        worker = CeleryWorker(app=client, process=process, log_path=log_path)
        started.append(worker)

        probe = client.send_task("revops.tasks.ping", args=["ready"])
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                worker.log_reported = True
                pytest.fail(f"The Celery worker exited with {process.returncode}:\n{worker.log()}", pytrace=False)
            try:
                probe.get(timeout=1)
                break
            except CeleryTimeout:
                if time.monotonic() > deadline:
                    worker.log_reported = True
                    pytest.fail(
                        f"The Celery worker did not answer a ping in {timeout:.0f}s:\n{worker.log()}", pytrace=False
                    )
        client.set_current()
        return worker

    yield start

    previous_app.set_current()
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()  # warm shutdown: the task in hand finishes
            try:
                worker.process.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        worker.app.close()
        if _test_failed(request.node) and not worker.log_reported:
            print(f"--- Celery worker log ({worker.log_path}) ---\n{worker.log()}")
