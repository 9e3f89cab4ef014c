"""Component checks for /health. No secrets: only states and timestamps."""

from __future__ import annotations

from django.db import connection

from revops.celery import app as celery_app
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


def overall(components: dict[str, dict]) -> tuple[str, int]:
    """Database or broker down → 503; beat not ticking → 'degraded' (pages still work)."""
    if any(components[name]["status"] != "ok" for name in ("database", "broker")):
        return "down", 503
    if components["beat"]["status"] != "ok":
        return "degraded", 200
    return "ok", 200
