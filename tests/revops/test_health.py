"""/health: database, broker and beat status for monitors, no login, no secrets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from revops.services import beat_tick_record

pytestmark = pytest.mark.django_db


def test_health_needs_no_login_and_reports_each_component(client):
    beat_tick_record()

    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok"}
    assert body["broker"]["status"] == "ok"
    assert body["beat"]["status"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


def test_health_is_degraded_but_up_when_beat_never_ticked(client):
    body = client.get("/health").json()

    assert body["status"] == "degraded"
    assert body["beat"] == {"status": "never", "last_tick": None}


def test_health_is_degraded_when_the_last_beat_tick_is_old(client):
    beat_tick_record(at=timezone.now() - dt.timedelta(minutes=5))

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["beat"]["status"] == "stale"


def test_health_is_down_when_the_broker_is_unreachable(client, settings):
    from revops.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/health")
    finally:
        app.conf.broker_url = original

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["broker"]["status"] == "down"
    assert "127.0.0.1" not in response.content.decode()  # no connection details leak


@pytest.mark.redis
@pytest.mark.slow
def test_health_follows_a_real_redis_that_stops_and_comes_back(client, tmp_path):
    """The test's own embedded Redis, never the one the suite or the machine uses."""
    from revops.celery import app
    from revops.devservices import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis")
    original = app.conf.broker_url
    try:
        app.conf.broker_url = server.attach(register=False)
        assert client.get("/health").json()["broker"]["status"] == "ok"

        server.stop()
        down = client.get("/health")
        assert (down.status_code, down.json()["broker"]["status"]) == (503, "down")

        app.conf.broker_url = server.attach(register=False)  # a new port and password
        assert client.get("/health").json()["broker"]["status"] == "ok"
    finally:
        app.conf.broker_url = original
        server.stop()


def test_health_reveals_no_secrets(client, settings):
    text = client.get("/health").content.decode()

    assert settings.SECRET_KEY not in text
    assert "postgres" not in text.lower()
