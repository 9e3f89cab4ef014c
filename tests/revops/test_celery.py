"""Tasks go through a real broker to a real `celery worker` process and back."""

from __future__ import annotations

import time

import pytest

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


def test_ping_round_trips_through_a_worker_on_the_filesystem_transport(celery_worker, tmp_path):
    """`make run` without Redis: kombu's filesystem broker and the file result backend."""
    root = tmp_path / "celery"
    folders = {
        "data_folder_in": root / "broker" / "queue",
        "data_folder_out": root / "broker" / "queue",
        "processed_folder": root / "broker" / "processed",
        "control_folder": root / "broker" / "control",
    }
    results = root / "results"
    for folder in [*folders.values(), results]:
        folder.mkdir(parents=True, exist_ok=True)  # neither kombu nor Celery creates them

    worker = celery_worker(
        "filesystem://",
        result_backend=f"file://{results}",
        transport_options={**{key: str(path) for key, path in folders.items()}, "store_processed": False},
        # The worker finds the same folders through the settings; no Redis anywhere.
        env={"CELERY_FILESYSTEM_ROOT": str(root), "REDIS_URL": ""},
    )

    assert worker.call("revops.tasks.ping", "hello") == "hello"
    assert list(folders["data_folder_in"].iterdir()) == []  # consumed, not left behind


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
