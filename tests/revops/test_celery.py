"""Tasks go through a real broker to a real `celery worker` process and back."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from revops.devservices import EmbeddedRedis
from revops.models import BeatTick
from revops.selectors import BEAT_TICK_NAME
from revops.tasks import record_beat_tick

pytestmark = pytest.mark.worker


@pytest.mark.redis
def test_ping_round_trips_through_a_worker_on_redis(celery_worker, celery_redis_url):
    worker = celery_worker(celery_redis_url)

    assert worker.call("revops.tasks.ping", "hello") == "hello"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # the worker commits; the test must see it
def test_beat_tick_written_by_the_worker_makes_health_report_beat_ok(celery_worker, celery_redis_url, client):
    assert client.get("/health").json()["beat"]["status"] == "never"
    celery_worker(celery_redis_url)

    record_beat_tick.delay()  # what beat sends every 30 s, published as app code does

    deadline = time.monotonic() + 30
    while not BeatTick.objects.filter(name=BEAT_TICK_NAME).exists():
        assert time.monotonic() < deadline, "the worker did not record a beat tick within 30 s"
        time.sleep(0.1)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["beat"]["status"] == "ok"


@pytest.mark.slow
def test_a_task_round_trips_through_the_embedded_redis_when_redis_url_is_unset(celery_worker, tmp_path):
    """A newcomer's machine: no REDIS_URL anywhere. The worker finds the project's embedded
    Redis by itself (through its state file) and so does the publishing side."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.attach(register=False)
    try:
        worker = celery_worker(
            url,  # what the worker derives itself: the embedded server's database 0
            env={
                # make run's settings, not the test settings' per-xdist-worker databases
                "DJANGO_SETTINGS_MODULE": "revops.settings.base",
                "REDIS_URL": None,
                "CELERY_BROKER_URL": None,
                "CELERY_RESULT_BACKEND": None,
                "REVOPS_REDIS_DIR": str(server.directory),
            },
        )
        assert worker.call("revops.tasks.ping", "hello") == "hello"
        assert f"redis://:**@127.0.0.1:{urlparse(url).port}/0" in worker.log()  # the worker's own banner
    finally:
        server.stop()


def test_every_task_can_be_enqueued_its_soft_limit_within_its_hard_limit():
    """Celery refuses to send a task whose soft time limit (its own, else the app default of
    25 minutes) exceeds its hard limit, so a task with a short hard limit needs its own soft
    one, or beat could never enqueue it."""
    from django.conf import settings

    from revops.celery import app

    app.autodiscover_tasks(force=True)
    ours = {
        name: task
        for name, task in app.tasks.items()
        if name.split(".")[0] in {"revops", "usage", "comp", "forecasting", "reviews"}
    }
    assert {"forecasting.tasks.run_forecasts_nightly", "usage.tasks.requeue_stale_import_jobs"} <= set(ours)
    for name, task in ours.items():
        soft = task.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
        hard = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        assert soft <= hard, f"{name}: soft limit {soft}s > hard limit {hard}s"
