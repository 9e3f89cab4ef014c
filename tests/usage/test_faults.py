"""Nothing lost, nothing twice: the events API and import jobs while workers are SIGKILLed and Redis restarts.

The scenario is ``bench.faults.run_scenario`` (``python -m bench.faults`` runs it at
1,000,000 events); here it runs at 60,000 against the test database, with real processes
only: gunicorn, ``celery worker`` processes killed with SIGKILL and started again, and an
embedded Redis of the test's own (never the machine's) that is stopped and started again.
"""

from __future__ import annotations

import os
import time

import pytest

from bench.faults import Config, restart_redis, run_scenario
from revops.devservices import EmbeddedRedis
from tests.conftest import worker_database_url

pytestmark = [pytest.mark.slow, pytest.mark.worker]

BUDGET_S = 90


@pytest.fixture
def own_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    server.attach(register=False)
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)  # the server and the workers commit; the test reads what they wrote
def test_every_acknowledged_event_is_stored_once_through_worker_kills_and_a_redis_restart(
    own_redis, tmp_path, settings
):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # the uploads the workers read
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "DATABASE_URL": worker_database_url(),
    }
    started = time.monotonic()

    result = run_scenario(
        Config.small(60_000),
        redis=own_redis,
        env=env,
        workdir=tmp_path / "run",
    )

    took = time.monotonic() - started
    result.summary.print()
    figures = result.figures
    logs = "\n".join(f"--- {path} ---\n{path.read_text(errors='replace')[-4000:]}" for path in result.logs)
    assert [(row.figure, row.value) for row in result.failed] == [], logs
    assert figures["sent"] == 60_000
    assert figures["lost"] == 0
    assert figures["stored"] == figures["accepted"]
    assert figures["sent"] == figures["accepted"] + figures["duplicates"]
    assert set(figures["statuses"]) <= {200, 503}, figures["statuses"]  # a 503 only with Retry-After (above)
    assert took < BUDGET_S, f"the scenario took {took:.0f} s"


def test_a_worker_holding_an_unacknowledged_task_reconnects_when_redis_restarts(own_redis, celery_worker):
    """A task with a countdown waits in the worker unacknowledged (every debounced fold is
    sent so). Celery 5.7 and kombu stopped such a worker with "Unrecoverable error:
    AttributeError" when the broker went away; revops.celery keeps it alive."""
    worker = celery_worker(own_redis.url(1))
    worker.app.send_task("revops.tasks.ping", args=["later"], countdown=60)
    deadline = time.monotonic() + 10
    while "received" not in worker.log().split("ready.", 1)[-1]:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)

    own_redis.stop()
    deadline = time.monotonic() + 20
    while "Connection to broker lost" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    restart_redis(own_redis)

    assert worker.call("revops.tasks.ping", "after the restart", timeout=60) == "after the restart"
    assert worker.process.poll() is None
    assert "Unrecoverable error" not in worker.log()
