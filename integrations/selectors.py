"""Reads: connections, their runs and log, and an account's CRM record link."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.models import Connection, ExternalRecord, RunLogEntry, RunState, SyncRun

RECENT_RUNS = 25
LOG_PAGE = 200


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.all()


def recent_runs(*, connection: Connection, limit: int = RECENT_RUNS) -> list[SyncRun]:
    return list(SyncRun.objects.filter(connection=connection).select_related("requested_by")[:limit])


def run_log(*, run: SyncRun, outcome: str = "", limit: int = LOG_PAGE) -> tuple[list[RunLogEntry], int]:
    entries = RunLogEntry.objects.filter(run=run)
    if outcome:
        entries = entries.filter(outcome=outcome)
    return list(entries[:limit]), entries.count()


def run_is_active(run: SyncRun) -> bool:
    return run.state in (RunState.QUEUED, RunState.RUNNING)


def crm_links(*, account_id: int) -> list[tuple[Connection, str]]:
    """(connection, record URL) for every live CRM record of the account."""
    from integrations.services import record_url

    records = ExternalRecord.objects.filter(
        object_type="account", local_id=account_id, deleted_at__isnull=True
    ).select_related("connection")
    return [(r.connection, record_url(r.connection, r.crm_id)) for r in records]
