"""Writes of the warehouse sources: save a source, queue and execute pulls, schedule them."""

from __future__ import annotations

import datetime as dt
import logging

import psycopg
from django.db import DatabaseError, transaction
from django.utils import timezone

from integrations.crypto import decrypt_json, encrypt_json
from integrations.models import RunState, WarehouseMode, WarehousePull, WarehouseSource
from integrations.warehouse.dialects import masked, parse_url
from integrations.warehouse.pull import PullOutcome, PullRejected, pull
from integrations.warehouse.sources import FIELDS, check_single_select, describe_columns
from revops.errors import ApplicationError
from revops.events import emit

logger = logging.getLogger(__name__)

PULL_TASK = "integrations.tasks.run_warehouse_pull"
STUCK_AFTER = dt.timedelta(hours=2)


# What a warehouse read can raise: SQLAlchemy's errors, and psycopg's own from the COPY … TO
# STDOUT that reads a PostgreSQL warehouse on the driver connection (a query failing only when
# its rows are read: a bad cast, a division by zero, an ambiguous column).
def warehouse_errors() -> tuple[type[Exception], ...]:
    """What a warehouse's driver raises (SQLAlchemy is imported only once a source is used)."""
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError, psycopg.Error)


def _check(source: WarehouseSource) -> None:
    if source.query.strip():
        check_single_select(source.query)
    elif not source.table.strip():
        raise ApplicationError("give a query or a table", details={"field": "query"})
    for name, required in FIELDS[source.mode]:
        if required and not (source.mapping or {}).get(name):
            raise ApplicationError(f"map the {name} column", details={"field": f"map_{name}"})


def warehouse_source_save(
    *,
    source: WarehouseSource | None = None,
    name: str,
    url: str,
    mode: str,
    query: str,
    table: str,
    mapping: dict[str, str],
    cursor_column: str,
    cursor_kind: str,
    lookback: int,
    schedule_minutes: int,
    user=None,
) -> WarehouseSource:
    """Create (``source`` None) or update a source. A blank ``url`` on update keeps the stored one
    (the page never shows it back)."""
    source = source or WarehouseSource(created_by=user)
    if url.strip():
        dialect, parsed = parse_url(url)
        source.dialect = dialect.name
        source.url_encrypted = encrypt_json({"url": parsed.render_as_string(hide_password=False)})
        source.url_display = masked(parsed)
    elif not source.url_encrypted:
        raise ApplicationError("is required", details={"field": "url"})
    if source.pk and source.name != name and source.pulls.exists():
        # The name is the aggregates' and events' source key: renaming would orphan them.
        raise ApplicationError(
            "cannot change once the source has pulled (it keys the pulled usage)", details={"field": "name"}
        )
    if WarehouseSource.objects.filter(name=name).exclude(pk=source.pk).exists():
        raise ApplicationError("another warehouse source has this name", details={"field": "name"})
    if source.pk and source.mode != mode and source.pulls.exists():
        raise ApplicationError("cannot change once the source has pulled", details={"field": "mode"})
    if cursor_kind != source.cursor_kind or cursor_column != source.cursor_column:
        source.last_cursor = ""  # a new cursor starts from the beginning
    source.name, source.mode, source.query, source.table = name, mode, query.strip(), table.strip()
    source.mapping = {k: v for k, v in mapping.items() if v}
    source.cursor_column, source.cursor_kind, source.lookback = cursor_column.strip(), cursor_kind, lookback
    source.schedule_minutes = schedule_minutes
    _check(source)
    source.save()
    return source


def source_url_text(source: WarehouseSource) -> str:
    return decrypt_json(source.url_encrypted)["url"]


def source_check_columns(*, source: WarehouseSource) -> list[str]:
    """The query's columns; ApplicationError naming every mapped column it lacks."""
    try:
        columns = describe_columns(source)
    except warehouse_errors() as exc:
        raise ApplicationError(f"The warehouse refused the query: {_short(exc)}") from None
    available = {c.lower() for c in columns}
    wanted = dict(source.mapping or {})
    if source.cursor_column:
        wanted["cursor"] = source.cursor_column
    missing = [f"{field} → {column}" for field, column in wanted.items() if column.lower() not in available]
    if missing:
        raise ApplicationError(
            f"The query returns no column for {', '.join(missing)}; it returns {', '.join(columns) or 'no columns'}."
        )
    return columns


def source_preview(*, source: WarehouseSource) -> PullOutcome:
    """Test & preview: the columns exist, and the first rows with their problems. Writes nothing."""
    source_check_columns(source=source)
    try:
        return pull(source, preview=True)
    except warehouse_errors() as exc:
        raise ApplicationError(f"The warehouse refused the query: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def pull_request(*, source: WarehouseSource, user=None, full: bool = False) -> WarehousePull:
    """Queue a pull (one queued or running pull per source at a time)."""
    with transaction.atomic():
        WarehouseSource.objects.select_for_update().get(pk=source.pk)
        active = source.pulls.filter(state__in=[RunState.QUEUED, RunState.RUNNING]).first()
        if active:
            return active
        run = WarehousePull.objects.create(
            source=source, full=full, requested_by=user, cursor_before=source.last_cursor
        )
        transaction.on_commit(lambda: _send(run.pk))
    return run


def _send(pull_id: int) -> None:
    from celery import current_app

    from revops.queue import SEND_OPTIONS

    try:
        current_app.send_task(PULL_TASK, args=[pull_id], **SEND_OPTIONS)
    except Exception:  # the broker is down: the scheduler's sweep sends queued pulls again
        logger.exception("could not send warehouse pull %s", pull_id)


def pull_execute(pull_id: int) -> WarehousePull | None:
    """Run a queued pull; a second worker finds it claimed and does nothing."""
    claimed = WarehousePull.objects.filter(pk=pull_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = WarehousePull.objects.select_related("source").get(pk=pull_id)
    source = run.source
    run.cursor_before = source.last_cursor
    started = timezone.now()
    try:
        with transaction.atomic():
            outcome = pull(source, full=run.full)
            source.last_cursor = outcome.cursor_after
            source.last_pull_at = timezone.now()
            source.save(update_fields=["last_cursor", "last_pull_at"])
            run.state = RunState.SUCCEEDED
            run.rows, run.counts, run.cursor_after = outcome.rows, outcome.counts, outcome.cursor_after
            run.finished_at = timezone.now()
            seconds = max((run.finished_at - started).total_seconds(), 1e-6)
            run.rows_per_second = run.rows / seconds
            run.save()
    except PullRejected as exc:
        _fail(run, exc.message, errors=exc.report.errors, error_count=exc.report.error_count)
    except ApplicationError as exc:
        _fail(run, exc.message)
    except (*warehouse_errors(), DatabaseError) as exc:
        _fail(run, f"The warehouse read failed: {_short(exc)}")
    return run


def _fail(run: WarehousePull, message: str, *, errors: list | None = None, error_count: int = 0) -> None:
    with transaction.atomic():
        run.state = RunState.FAILED
        run.error = message
        run.errors = errors or []
        run.error_count = error_count
        run.finished_at = timezone.now()
        run.cursor_after = run.source.last_cursor
        run.save()
        emit(
            "sync.failed",
            {
                "kind": "warehouse",
                "source": run.source.name,
                "pull": run.pk,
                "error": message,
                "error_count": error_count,
                "errors": (errors or [])[:20],
            },
        )


def schedule_due_pulls(*, now: dt.datetime | None = None) -> list[WarehousePull]:
    """Queue a pull for every source whose schedule is due; send again the ones still queued
    (a broker that was down); fail pulls whose worker died (running for hours)."""
    now = now or timezone.now()
    WarehousePull.objects.filter(state=RunState.RUNNING, started_at__lt=now - STUCK_AFTER).update(
        state=RunState.FAILED, finished_at=now, error="The worker stopped before the pull finished."
    )
    for stale in WarehousePull.objects.filter(state=RunState.QUEUED, created_at__lt=now - dt.timedelta(minutes=5)):
        _send(stale.pk)
    queued = []
    for source in WarehouseSource.objects.filter(schedule_minutes__gt=0):
        # The last pull requested, succeeded or not: a failing source is retried on its schedule, not every sweep.
        last = source.pulls.values_list("created_at", flat=True).first()
        due = last is None or last <= now - dt.timedelta(minutes=source.schedule_minutes)
        if due and not source.pulls.filter(state__in=[RunState.QUEUED, RunState.RUNNING]).exists():
            queued.append(pull_request(source=source))
    return queued


__all__ = ["WarehouseMode", "pull_execute", "pull_request", "schedule_due_pulls", "warehouse_source_save"]
