"""Every periodic task, in one place. Add new schedules here, not in apps."""

from __future__ import annotations

from celery.schedules import crontab

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
    # Raw events past the retention window (rollups are kept forever).
    "usage-apply-retention": {
        "task": "usage.tasks.apply_retention",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 6 * 3600},
    },
    # Shared metrics and alerts as of yesterday (UTC), after the day is complete.
    "usage-refresh-metrics": {
        "task": "usage.tasks.refresh_metrics",
        "schedule": crontab(hour=0, minute=30),
        "options": {"expires": 6 * 3600},
    },
    # Revenue forecast snapshots as of yesterday, after the metrics refresh (fans out to shards).
    "forecasting-run-nightly": {
        "task": "forecasting.tasks.run_forecasts_nightly",
        "schedule": crontab(hour=1, minute=30),
        "options": {"expires": 6 * 3600},
    },
    # CSM digests after the refresh, before the working day in most time zones.
    "usage-alert-digests": {
        "task": "usage.tasks.send_alert_digests",
        "schedule": crontab(hour=6, minute=0),
        "options": {"expires": 6 * 3600},
    },
    # The minute sweep: import jobs whose worker died mid-run (no heartbeat for minutes), or
    # whose task was never sent (queued over a minute), are sent again; the claim decides.
    "usage-requeue-stale-imports": {
        "task": "usage.tasks.requeue_stale_import_jobs",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # One-time form tokens (double-submit protection) older than two days.
    "revops-forget-old-submissions": {
        "task": "revops.tasks.forget_old_submissions",
        "schedule": crontab(hour=3, minute=45),
        "options": {"expires": 6 * 3600},
    },
    # Comp for the month that just ended, once its usage is in (the 1st, after the nightly refresh).
    "comp-run-monthly": {
        "task": "comp.tasks.run_comp_monthly",
        "schedule": crontab(day_of_month=1, hour=2, minute=0),
        "options": {"expires": 12 * 3600},
    },
    # CRM connections: read runs when each connection's schedule is due (hourly by default),
    # and the daily write-back of metrics to the CRM's accounts after the nightly forecasts.
    "integrations-schedule-reads": {
        "task": "integrations.tasks.schedule_reads",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Warehouse sources: pulls when each source's schedule is due (hourly by default).
    "integrations-schedule-warehouse-pulls": {
        "task": "integrations.tasks.schedule_warehouse_pulls",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "integrations-writeback-daily": {
        "task": "integrations.tasks.schedule_writebacks",
        "schedule": crontab(hour=4, minute=0),
        "options": {"expires": 6 * 3600},
    },
    # Stripe billing sources: the syncs that are due (each connection's own interval), every minute.
    "integrations-stripe-schedule": {
        "task": "integrations.tasks.schedule_stripe_syncs",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Webhooks out: retries that come due, sends lost while the broker was away, replays.
    "webhooks-send-due": {
        "task": "webhooks.tasks.send_due",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # BI exports: yesterday's partitions and recent days whose data changed, after the
    # nightly metrics refresh, forecasts and the 1st's comp run.
    "exports-schedule-daily": {
        "task": "exports.tasks.schedule_exports",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 6 * 3600},
    },
}
