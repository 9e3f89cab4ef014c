"""Writes: connections, their mappings, and sync runs (read and write-back).

A run is a ``SyncRun`` row, queued by a person ("Run now", "Preview") or the schedule, and
executed by the worker (``integrations.tasks.run_sync``), which claims it with a
conditional UPDATE so a redelivered task does nothing. A read run fetches outside any
transaction (progress is visible), then applies everything in one transaction; a dry run
rolls that transaction back and keeps the log as the preview.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.clients import hubspot, salesforce
from integrations.clients.base import Retrier
from integrations.crypto import decrypt_json, encrypt_json
from integrations.models import Connection, ExternalRecord, Outcome, Provider, RunKind, RunLogEntry, RunState, SyncRun
from integrations.sync import SYNC_SOURCE, Sync, audit_watermark
from integrations.writeback import changed_values
from revops.audit import acting_as
from revops.errors import ApplicationError
from revops.events import emit_many
from revops.queue import SEND_OPTIONS

logger = logging.getLogger(__name__)

RUN_TASK = "integrations.tasks.run_sync"
PREVIEW_ENTRIES = 200
LOG_ENTRIES_MAX = 50_000
PROVIDERS = {Provider.SALESFORCE: salesforce, Provider.HUBSPOT: hubspot}
# A mapping's value is a CRM field name (API name); role and segment maps are words.
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


def default_mapping(provider: str) -> dict:
    return copy.deepcopy(PROVIDERS[provider].DEFAULT_MAPPING)


@transaction.atomic
def connection_create(
    *,
    name: str,
    provider: str,
    base_url: str,
    credentials: dict,
    created_by=None,
    portal_id: str = "",
    ca_file: str = "",
    mapping: dict | None = None,
) -> Connection:
    if provider not in Provider.values:
        raise ApplicationError(f"Unknown CRM “{provider}”.", details={"field": "provider"})
    if not name.strip():
        raise ApplicationError("A connection needs a name.", details={"field": "name"})
    if not re.match(r"^https?://[^\s/]+", base_url or ""):
        raise ApplicationError(
            "The URL must start with https:// (or http:// for a local test server).", details={"field": "base_url"}
        )
    if not (credentials.get("access_token") or credentials.get("refresh_token")):
        raise ApplicationError("An access token or a refresh token is required.", details={"field": "access_token"})
    return Connection.objects.create(
        name=name.strip(),
        provider=provider,
        base_url=base_url.rstrip("/"),
        portal_id=portal_id.strip(),
        ca_file=ca_file,
        credentials=encrypt_json(credentials),
        mapping=mapping or default_mapping(provider),
        created_by=created_by,
    )


def mapping_check(provider: str, mapping: dict) -> dict:
    """The mapping as it will be stored, or an ``ApplicationError`` naming the bad entry."""
    default = default_mapping(provider)
    clean = copy.deepcopy(mapping)
    for section in ("account", "deal", "writeback"):
        entries = clean.get(section) or {}
        for key, value in entries.items():
            if key not in default[section]:
                raise ApplicationError(
                    f"{section}.{key} is not a field revops maps.", details={"field": f"{section}.{key}"}
                )
            if value and not FIELD_NAME.match(value):
                raise ApplicationError(
                    f"{section}.{key}: “{value[:80]}” is not a CRM field name (letters, digits and _, starting with a letter).",
                    details={"field": f"{section}.{key}"},
                )
    if not (clean.get("account") or {}).get("name"):
        raise ApplicationError(
            "account.name must name the CRM field with the account's name.", details={"field": "account.name"}
        )
    from accounts.models import OwnerRole, Segment

    for crm_role, role in (clean.get("team_roles") or {}).items():
        if role not in OwnerRole.values:
            raise ApplicationError(
                f"team role “{crm_role[:80]}” maps to “{role[:40]}”, which is not one of {', '.join(OwnerRole.values)}.",
                details={"field": "team_roles"},
            )
    for value, segment in (clean.get("segment_values") or {}).items():
        if segment not in Segment.values:
            raise ApplicationError(
                f"segment value “{value[:80]}” maps to “{segment[:40]}”, which is not one of {', '.join(Segment.values)}.",
                details={"field": "segment_values"},
            )
    if clean.get("segment_default") and clean["segment_default"] not in Segment.values:
        raise ApplicationError(
            f"The default segment must be one of {', '.join(Segment.values)}.", details={"field": "segment_default"}
        )
    return clean


@transaction.atomic
def connection_update_mapping(*, connection: Connection, mapping: dict) -> Connection:
    connection.mapping = mapping_check(connection.provider, mapping)
    connection.save(update_fields=["mapping"])
    return connection


def connector_for(connection: Connection, *, retrier: Retrier | None = None):
    """The provider's connector with the stored credentials; a refreshed token is stored back."""
    credentials = decrypt_json(connection.credentials)

    def store(refreshed: dict) -> None:
        Connection.objects.filter(pk=connection.pk).update(credentials=encrypt_json(refreshed))

    module = PROVIDERS[connection.provider]
    return module.Connector(
        base_url=connection.base_url,
        credentials=credentials,
        mapping=connection.mapping,
        ca_file=connection.ca_file,
        retrier=retrier,
        on_refresh=store,
    )


def record_url(connection: Connection, crm_id: str) -> str:
    if connection.provider == Provider.HUBSPOT:
        return hubspot.record_url(connection.portal_id, crm_id)
    return salesforce.record_url(connection.base_url, crm_id)


# --- runs ------------------------------------------------------------------------------


def run_request(
    *, connection: Connection, kind: str, requested_by=None, dry_run: bool = False, full: bool = False
) -> SyncRun:
    """Queue a run (sent to the worker on commit). One queued or running run per connection
    and kind: asking again while one is on its way returns that one."""
    if kind not in RunKind.values:
        raise ApplicationError(f"Unknown run kind “{kind}”.", details={"field": "kind"})
    with transaction.atomic():
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        pending = SyncRun.objects.filter(
            connection=connection, kind=kind, dry_run=dry_run, state__in=[RunState.QUEUED, RunState.RUNNING]
        ).first()
        if pending is not None:
            return pending
        run = SyncRun.objects.create(
            connection=connection,
            kind=kind,
            dry_run=dry_run,
            full=full,
            requested_by=requested_by,
            cursors_before=connection.cursors,
        )
        transaction.on_commit(lambda: enqueue_run(run.pk))
    return run


def enqueue_run(run_id: int) -> None:
    try:
        current_app.send_task(RUN_TASK, args=[run_id], expires=6 * 3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send CRM sync run %s; the scheduler will send it", run_id)


def _claim(run_id: int) -> SyncRun | None:
    claimed = SyncRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now(), stage="starting"
    )
    return SyncRun.objects.select_related("connection").get(pk=run_id) if claimed else None


def _progress(run: SyncRun, stage: str, done: int = 0, total: int = 0) -> None:
    SyncRun.objects.filter(pk=run.pk).update(stage=stage, done=done, total=total)


class _DryRun(Exception):
    """Rolls a preview's transaction back."""


def run_execute(run_id: int, *, today: dt.date | None = None) -> SyncRun | None:
    """Execute a queued run (None if another worker has it). Errors fail the run, saying why."""
    run = _claim(run_id)
    if run is None:
        return None
    today = today or timezone.now().date()

    def waited(delay: float, why: str) -> None:
        SyncRun.objects.filter(pk=run.pk).update(stage=f"rate-limited ({why}); waiting {delay:.1f} s")

    retrier = Retrier(on_wait=waited)
    entries, counts, error = [], {}, ""
    try:
        connector = connector_for(run.connection, retrier=retrier)
        if run.kind == RunKind.READ:
            entries, counts = _read(run, connector, today=today)
        else:
            entries, counts = _writeback(run, connector)
    except ApplicationError as exc:
        error = exc.message
    except Exception as exc:  # a bug must still end the run, saying so, and not leave it "running"
        logger.exception("CRM run %s failed", run.pk)
        error = f"Unexpected error: {exc.__class__.__name__}: {exc}"
    _finish(run, entries=entries, counts=counts, error=error, waits=retrier.waits)
    return SyncRun.objects.get(pk=run.pk)


def _read(run: SyncRun, connector, *, today: dt.date):
    connection = run.connection
    _progress(run, "reading from the CRM")
    batch = connector.fetch(cursors=connection.cursors, full=run.full)
    total = len(batch.accounts) + len(batch.deals) + len(batch.team)
    _progress(run, "applying", 0, total)
    now = timezone.now()
    result = {}
    try:
        with transaction.atomic(), acting_as(run.requested_by_id, source=SYNC_SOURCE, run=run.pk):
            sync = Sync(connection=connection, today=today, now=now)
            people = sync.people(batch)
            present = sync.accounts(batch)
            sync.contracts(batch, present)
            sync.owners(batch, people, present)
            result = {"entries": sync.applied.entries, "counts": sync.applied.counts}
            if run.dry_run:
                raise _DryRun
            sync.save_records()
            Connection.objects.filter(pk=connection.pk).update(
                cursors=batch.cursors, last_read_at=now, audit_watermark=audit_watermark()
            )
            SyncRun.objects.filter(pk=run.pk).update(cursors_after=batch.cursors)
    except _DryRun:
        pass
    return result["entries"], result["counts"]


def _writeback(run: SyncRun, connector):
    connection = run.connection
    _progress(run, "comparing metrics with the values last written")
    updates, texts, records = changed_values(connection)
    counts = {"account": {"read": len(records), "unchanged": len(records) - len(updates), "changed": len(updates)}}
    entries = []
    fields = connection.mapping.get("writeback") or {}

    def shown(crm_id: str) -> dict[str, str]:
        return {fields[key]: text for key, text in texts[crm_id].items()}

    if run.dry_run:
        for crm_id in updates:
            entries.append(_entry("account", crm_id, Outcome.WRITTEN, "would be written", shown(crm_id)))
        return entries, counts
    _progress(run, "writing to the CRM", 0, len(updates))
    results = connector.push(updates)
    by_id = {r.crm_id: r for r in records}
    written = []
    for result in results:
        record = by_id[result.crm_id]
        if result.ok:
            record.pushed = {**record.pushed, **texts[result.crm_id]}
            written.append(record)
            entries.append(_entry("account", result.crm_id, Outcome.WRITTEN, changes=shown(result.crm_id)))
        else:
            entries.append(_entry("account", result.crm_id, Outcome.REJECTED, result.error))
    ExternalRecord.objects.bulk_update(written, ["pushed"], batch_size=2000)
    counts["account"] |= {"written": len(written), "rejected": len(results) - len(written)}
    Connection.objects.filter(pk=connection.pk).update(last_writeback_at=timezone.now())
    return entries, counts


def _entry(object_type, record_id, outcome, reason="", changes=None):
    from integrations.sync import Entry

    return Entry(object_type, record_id, outcome, reason, changes or {})


def _finish(run: SyncRun, *, entries: list, counts: dict, error: str, waits: int) -> None:
    limit = PREVIEW_ENTRIES if run.dry_run else LOG_ENTRIES_MAX
    RunLogEntry.objects.bulk_create(
        [
            RunLogEntry(
                run_id=run.pk,
                object_type=e.object_type,
                record_id=e.record_id[:100],
                outcome=e.outcome,
                reason=e.reason,
                changes=e.changes,
            )
            for e in entries[:limit]
        ],
        batch_size=2000,
    )
    with transaction.atomic():
        SyncRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED if error else RunState.SUCCEEDED,
            stage="failed" if error else "done",
            error=error,
            counts={kind: dict(c) for kind, c in counts.items()},
            rate_limit_waits=waits,
            finished_at=timezone.now(),
        )
        if error:
            sync_failed_emit(run_ids=[run.pk])


def sync_failed_emit(*, run_ids: list[int]) -> None:
    """Tell listeners (webhooks) these runs failed; call it in the transaction that failed them."""
    runs = SyncRun.objects.filter(pk__in=run_ids, state=RunState.FAILED).select_related("connection").order_by("pk")
    emit_many(
        "sync.failed",
        [
            (
                {
                    "run_id": run.pk,
                    "connection": {
                        "id": run.connection_id,
                        "name": run.connection.name,
                        "provider": run.connection.provider,
                    },
                    "kind": run.kind,
                    "preview": run.dry_run,
                    "error": run.error,
                    "finished_at": run.finished_at.isoformat() if run.finished_at else "",
                    "link": f"/data/connections/runs/{run.pk}/",
                },
                (),
            )
            for run in runs
        ],
    )


def schedule_due_runs(*, now: dt.datetime | None = None) -> list[int]:
    """Queue a read run for every connection whose schedule is due, and resend queued runs
    whose task never arrived (queued for over a minute)."""
    now = now or timezone.now()
    queued = []
    for connection in Connection.objects.filter(schedule_minutes__gt=0):
        due = connection.last_read_at is None or connection.last_read_at <= now - dt.timedelta(
            minutes=connection.schedule_minutes
        )
        if due:
            queued.append(run_request(connection=connection, kind=RunKind.READ).pk)
    stale = SyncRun.objects.filter(state=RunState.QUEUED, created_at__lt=now - dt.timedelta(minutes=1))
    for run_id in stale.values_list("pk", flat=True):
        enqueue_run(run_id)
    return queued


def schedule_writebacks() -> list[int]:
    """The daily write-back of every connection that has it on."""
    return [
        run_request(connection=connection, kind=RunKind.WRITEBACK).pk
        for connection in Connection.objects.filter(writeback_enabled=True)
    ]


def fail_stuck_runs(*, now: dt.datetime | None = None) -> int:
    """A run "running" for longer than the hard time limit lost its worker: say so."""
    now = now or timezone.now()
    limit = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    with transaction.atomic():
        stuck = list(
            SyncRun.objects.select_for_update()
            .filter(state=RunState.RUNNING, started_at__lt=now - limit)
            .values_list("pk", flat=True)
        )
        failed = SyncRun.objects.filter(pk__in=stuck).update(
            state=RunState.FAILED, stage="failed", error="The worker running it stopped; run it again.", finished_at=now
        )
        sync_failed_emit(run_ids=stuck)
    return failed
