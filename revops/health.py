"""Component checks for /health. No secrets: only states and timestamps."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from revops.celery import app as celery_app
from revops.replica import replica_status
from revops.selectors import beat_status


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type is the report
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok"}


def check_broker() -> dict:
    transport = celery_app.conf.broker_url.split("://", 1)[0]
    try:
        with celery_app.connection_for_write(connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "transport": transport, "error": type(exc).__name__}
    return {"status": "ok", "transport": transport}


def check_beat() -> dict:
    try:
        beat = beat_status()
    except Exception as exc:  # noqa: BLE001
        return {"status": "unknown", "error": type(exc).__name__}
    return {"status": beat.status, "last_tick": beat.last_tick.isoformat() if beat.last_tick else None}


def check_replica() -> dict | None:
    """The read replica's lag; None when none is configured. Down or lagging past the
    limit, pages read from the primary: 'degraded', never 'down'."""
    if "replica" not in settings.DATABASES:
        return None
    status = replica_status()
    if status is None:
        return {"status": "down"}
    lag = round(status[1], 1)
    return {"status": "ok" if lag <= settings.REPLICA_MAX_LAG_S else "lagging", "lag_seconds": lag}


def overall(components: dict[str, dict]) -> tuple[str, int]:
    """Database or broker down → 503; beat not ticking or the replica unusable → 'degraded'
    (pages still work)."""
    if any(components[name]["status"] != "ok" for name in ("database", "broker")):
        return "down", 503
    if components["beat"]["status"] != "ok" or components.get("replica", {"status": "ok"})["status"] != "ok":
        return "degraded", 200
    return "ok", 200
