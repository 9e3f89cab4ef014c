"""Every periodic task, in one place. Add new schedules here, not in apps."""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict] = {
    "beat-heartbeat": {
        "task": "revops.tasks.record_beat_tick",
        "schedule": 30.0,
        # A tick that waited longer than its own period is worthless.
        "options": {"expires": 25},
    },
    # Safety net for the debounced fold scheduled on every ingest commit.
    "usage-fold-rollups": {
        "task": "usage.tasks.fold_rollups",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}
