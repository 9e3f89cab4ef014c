"""Exports for BI: the partition writers (CSV and Parquet, streamed) and the runs that call them.

One pass over a day's rows writes every format at once, chunk by chunk: a chunk of at most
``selectors.CHUNK_ROWS`` tuples becomes a pyarrow RecordBatch (Parquet) and CSV lines, so
memory stays bounded whatever the day's size. Files are written to a local spool first,
then put under their final names (exports.storage), the manifest last.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from celery import current_app
from django.db import transaction
from django.utils import timezone

from exports.crypto import decrypt_json, encrypt_json
from exports.models import ExportedPartition, ExportRun, ExportTarget, Format, RunState, Schedule
from exports.selectors import (
    EMPTY_FINGERPRINT,
    TABLES,
    Column,
    Table,
    table_day_rows,
    table_fingerprints,
    text_value,
)
from exports.storage import Destination, destination_parse, store_for
from revops.errors import ApplicationError
from revops.events import emit
from revops.queue import SEND_OPTIONS

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow (~55 MB resident) is imported where files are written, not when the URL conf
# loads these services: web processes and management commands never pay for it.

logger = logging.getLogger(__name__)

RUN_TASK = "exports.tasks.run_export"
MAX_RANGE_DAYS = 366
# How far back the daily task looks for days whose data changed since they were written
# (late usage, re-pricing, a re-run refresh): raw events are kept 35 days.
RECHECK_DAYS = 40
PART = "part-0000"
STUCK_AFTER = dt.timedelta(hours=3)


# --- Arrow types ------------------------------------------------------------------------------


def arrow_type(column: Column) -> pa.DataType:
    import pyarrow as pa

    if column.kind == "decimal":
        return pa.decimal128(column.precision, column.scale)
    return {
        "string": pa.string(),
        "json": pa.string(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }[column.kind]


def arrow_schema(table: Table) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in table.columns])


def _arrow_batch(table: Table, schema: pa.Schema, rows: list[tuple]) -> pa.RecordBatch:
    import pyarrow as pa

    arrays = []
    for i, column in enumerate(table.columns):
        values = [row[i] for row in rows]
        if column.kind == "json":
            values = [text_value(column, v) for v in values]
        arrays.append(pa.array(values, type=schema.field(i).type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# --- Partitions -------------------------------------------------------------------------------


def partition_dir(table: str, day: dt.date) -> str:
    return f"{table}/dt={day:%Y-%m-%d}"


@dataclass
class PartitionResult:
    rows: int = 0
    files: dict[str, dict] = field(default_factory=dict)  # name → {"bytes", "sha256"}

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.files.values())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_partition_files(*, table: Table, day: dt.date, formats: list[str], folder: Path) -> PartitionResult:
    """Write the day's rows of ``table`` into ``folder`` as ``part-0000.<format>`` files, in
    one streamed pass over the database."""
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    result = PartitionResult()
    parquet_path, csv_path = folder / f"{PART}.parquet", folder / f"{PART}.csv"
    parquet = pq.ParquetWriter(parquet_path, schema, compression="zstd") if Format.PARQUET in formats else None
    csv_file = csv_path.open("w", newline="", encoding="utf-8") if Format.CSV in formats else None
    try:
        writer = csv.writer(csv_file, lineterminator="\n") if csv_file else None
        if writer:
            writer.writerow(table.column_names)
        for chunk in table_day_rows(table=table, day=day):
            result.rows += len(chunk)
            if parquet:
                parquet.write_batch(_arrow_batch(table, schema, chunk))
            if writer:
                columns = table.columns
                writer.writerows(
                    ["" if v is None else text_value(c, v) for c, v in zip(columns, row, strict=True)] for row in chunk
                )
    finally:
        if parquet:
            parquet.close()
        if csv_file:
            csv_file.close()
    for path in (parquet_path, csv_path):
        if path.exists():
            result.files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return result


def manifest_for(*, table: Table, day: dt.date, result: PartitionResult, exported_at: dt.datetime) -> dict:
    return {
        "table": table.name,
        "dt": day.isoformat(),
        "rows": result.rows,
        "columns": [{"name": c.name, "type": c.type_text, "nullable": c.nullable} for c in table.columns],
        "files": [{"name": name, **info} for name, info in sorted(result.files.items())],
        "exported_at": exported_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }


def export_partition(*, store, table: Table, day: dt.date, formats: list[str], spool: Path) -> PartitionResult:
    """Write one partition to ``store``, replacing what was there: the data files first, each
    put under its final name only when complete, then the manifest that describes them."""
    folder = spool / f"{table.name}-{day:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    result = write_partition_files(table=table, day=day, formats=formats, folder=folder)
    prefix = partition_dir(table.name, day)
    for name in sorted(result.files):
        store.put_file(f"{prefix}/{name}", folder / name)
    manifest = manifest_for(table=table, day=day, result=result, exported_at=timezone.now())
    store.put_bytes(f"{prefix}/_manifest.json", json.dumps(manifest, indent=2).encode())
    for name in result.files:
        (folder / name).unlink()
    folder.rmdir()
    return result


# --- Targets ----------------------------------------------------------------------------------


def _check_choices(formats: list[str], tables: list[str]) -> None:
    if not formats or set(formats) - set(Format.values):
        raise ApplicationError("Choose at least one format: csv, parquet.", details={"field": "formats"})
    if not tables or set(tables) - set(TABLES):
        raise ApplicationError(f"Choose at least one table: {', '.join(TABLES)}.", details={"field": "tables"})


def _credentials(destination: Destination, credentials: dict) -> dict:
    if destination.kind == "file":
        return {}
    return {k: v for k, v in credentials.items() if k in ("access_key_id", "secret_access_key") and v}


def target_create(
    *,
    name: str,
    url: str,
    formats: list[str],
    tables: list[str],
    schedule: str = Schedule.DAILY,
    credentials: dict | None = None,
    created_by=None,
) -> ExportTarget:
    destination = destination_parse(url)
    _check_choices(formats, tables)
    name = name.strip()
    if ExportTarget.objects.filter(name__iexact=name).exists():
        raise ApplicationError(f"A target named “{name}” exists already.", details={"field": "name"})
    return ExportTarget.objects.create(
        name=name,
        url=url.strip(),
        formats=sorted(set(formats)),
        tables=[t for t in TABLES if t in tables],
        schedule=schedule,
        credentials=encrypt_json(_credentials(destination, credentials or {})),
        created_by=created_by,
    )


def target_update(
    *,
    target: ExportTarget,
    name: str,
    url: str,
    formats: list[str],
    tables: list[str],
    schedule: str,
    credentials: dict | None = None,
) -> ExportTarget:
    """Change a target; blank credential fields keep the stored ones."""
    destination = destination_parse(url)
    _check_choices(formats, tables)
    name = name.strip()
    if ExportTarget.objects.filter(name__iexact=name).exclude(pk=target.pk).exists():
        raise ApplicationError(f"A target named “{name}” exists already.", details={"field": "name"})
    stored = decrypt_json(target.credentials) if target.credentials else {}
    merged = _credentials(destination, {**stored, **{k: v for k, v in (credentials or {}).items() if v}})
    target.name, target.url, target.schedule = name, url.strip(), schedule
    target.formats = sorted(set(formats))
    target.tables = [t for t in TABLES if t in tables]
    target.credentials = encrypt_json(merged)
    target.save()
    return target


def target_store(target: ExportTarget):
    return store_for(destination_parse(target.url), decrypt_json(target.credentials))


def target_test(*, target: ExportTarget) -> str:
    """Write a probe object to the target and delete it again; say what was checked."""
    destination = destination_parse(target.url)
    store = target_store(target)
    key = f"_revops_probe/{uuid.uuid4().hex}.txt"
    store.put_bytes(key, b"revops export probe: safe to delete\n")
    if store.read(key) != b"revops export probe: safe to delete\n":
        raise ApplicationError("The probe object read back differs from what was written.")
    store.delete(key)
    return f"Wrote, read back and deleted a probe object in {destination.describe()}."


# --- Runs -------------------------------------------------------------------------------------


def _days(first: dt.date, last: dt.date) -> list[str]:
    return [(first + dt.timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]


def run_request(*, target: ExportTarget, plan: dict[str, list[str]], reason: str, requested_by=None) -> ExportRun:
    """Queue a run writing ``plan`` ({table: [days]}); the worker starts it after commit."""
    with transaction.atomic():
        run = ExportRun.objects.create(target=target, plan=plan, reason=reason[:200], requested_by=requested_by)
        transaction.on_commit(lambda: enqueue_run(run.pk))
    return run


def run_request_range(
    *, target: ExportTarget, tables: list[str], first: dt.date, last: dt.date, requested_by=None
) -> ExportRun:
    if first > last:
        raise ApplicationError("The first day must not be after the last day.", details={"field": "first_day"})
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise ApplicationError(
            f"At most {MAX_RANGE_DAYS} days a run; {first} to {last} is {days}.", details={"field": "last_day"}
        )
    if not tables or set(tables) - set(target.tables):
        raise ApplicationError(
            f"Choose among this target's tables: {', '.join(target.tables)}.", details={"field": "tables"}
        )
    plan = {t: _days(first, last) for t in TABLES if t in tables}
    return run_request(target=target, plan=plan, reason="run by hand", requested_by=requested_by)


def enqueue_run(run_id: int) -> None:
    try:
        current_app.send_task(RUN_TASK, args=[run_id], expires=6 * 3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send export run %s; the daily task fails it if it never starts", run_id)


def _claim(run_id: int) -> ExportRun | None:
    claimed = ExportRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now()
    )
    return ExportRun.objects.select_related("target").get(pk=run_id) if claimed else None


def run_execute(run_id: int) -> ExportRun | None:
    """Write every partition of a queued run (None if another worker has it). A failure stops
    the run, saying why; partitions already written stay written and recorded."""
    run = _claim(run_id)
    if run is None:
        return None
    target = run.target
    counts: dict[str, dict] = {}
    error = ""
    clock = time.perf_counter()
    try:
        store = target_store(target)
        with tempfile.TemporaryDirectory(prefix="revops-export-") as spool:
            for name, days in run.plan.items():
                table = TABLES[name]
                c = counts.setdefault(name, {"partitions": 0, "rows": 0, "files": 0, "bytes": 0})
                for text in days:
                    day = dt.date.fromisoformat(text)
                    # The fingerprint before the read: a change during the write is caught next time.
                    fingerprint = table_fingerprints(table=table, first=day, last=day).get(day, EMPTY_FINGERPRINT)
                    result = export_partition(
                        store=store, table=table, day=day, formats=target.formats, spool=Path(spool)
                    )
                    ExportedPartition.objects.update_or_create(
                        target=target,
                        table=name,
                        day=day,
                        defaults={
                            "fingerprint": fingerprint,
                            "rows": result.rows,
                            "bytes": result.bytes,
                            "exported_at": timezone.now(),
                            "run": run,
                        },
                    )
                    c["partitions"] += 1
                    c["rows"] += result.rows
                    c["files"] += len(result.files) + 1  # and the manifest
                    c["bytes"] += result.bytes
                    ExportRun.objects.filter(pk=run.pk).update(counts=counts)
                    _advance(target, name, day)
    except ApplicationError as exc:
        error = exc.message
    except Exception as exc:  # a bug must still end the run, saying so, and not leave it "running"
        logger.exception("export run %s failed", run.pk)
        error = f"Unexpected error: {exc.__class__.__name__}: {exc}"
    seconds = time.perf_counter() - clock
    with transaction.atomic():
        ExportRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED if error else RunState.SUCCEEDED,
            counts={**counts, "_seconds": round(seconds, 3)},
            error=error,
            finished_at=timezone.now(),
        )
        if error:
            emit(
                "sync.failed",
                {"kind": "export", "target": target.name, "run": run.pk, "error": error},
            )
    return ExportRun.objects.get(pk=run.pk)


def _advance(target: ExportTarget, table: str, day: dt.date) -> None:
    """Move the table's last exported day forward (never back: a backfill keeps it)."""
    with transaction.atomic():
        fresh = ExportTarget.objects.select_for_update().get(pk=target.pk)
        current = fresh.last_exported.get(table)
        if current is None or day.isoformat() > current:
            fresh.last_exported = {**fresh.last_exported, table: day.isoformat()}
            fresh.save(update_fields=["last_exported"])


# --- The daily task -----------------------------------------------------------------------


def due_plan(*, target: ExportTarget, today: dt.date) -> dict[str, list[str]]:
    """{table: [days]} the target is due: every day after the last exported one up to
    yesterday (UTC; just yesterday for a new target), and the days of the last RECHECK_DAYS
    whose data changed since they were written."""
    yesterday = today - dt.timedelta(days=1)
    window_start = yesterday - dt.timedelta(days=RECHECK_DAYS - 1)
    plan: dict[str, list[str]] = {}
    for name in target.tables:
        table = TABLES[name]
        last = target.last_exported.get(name)
        first_new = dt.date.fromisoformat(last) + dt.timedelta(days=1) if last else yesterday
        due = set(_days(max(first_new, yesterday - dt.timedelta(days=MAX_RANGE_DAYS - 1)), yesterday))
        written = dict(
            ExportedPartition.objects.filter(target=target, table=name, day__gte=window_start).values_list(
                "day", "fingerprint"
            )
        )
        if written:
            now = table_fingerprints(table=table, first=min(written), last=yesterday)
            due |= {d.isoformat() for d, fp in written.items() if now.get(d, EMPTY_FINGERPRINT) != fp}
            # A day that was empty when written (no partition row kept a fingerprint) and now has rows.
            due |= {d.isoformat() for d in now if d not in written and d >= min(written)}
        if due:
            plan[name] = sorted(due)
    return plan


def schedule_daily_exports(*, today: dt.date | None = None) -> list[ExportRun]:
    """Queue a run for every daily target with something due; fail runs whose worker died."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    fail_stuck_runs()
    runs = []
    for target in ExportTarget.objects.filter(schedule=Schedule.DAILY):
        if ExportRun.objects.filter(target=target, state__in=[RunState.QUEUED, RunState.RUNNING]).exists():
            continue  # the next day's run picks up whatever this one leaves
        plan = due_plan(target=target, today=today)
        if plan:
            runs.append(run_request(target=target, plan=plan, reason="daily: new days and changed days"))
    return runs


def fail_stuck_runs() -> int:
    cutoff = timezone.now() - STUCK_AFTER
    return ExportRun.objects.filter(state__in=[RunState.QUEUED, RunState.RUNNING], created_at__lt=cutoff).update(
        state=RunState.FAILED,
        error="The run did not finish within 3 hours (its worker stopped).",
        finished_at=timezone.now(),
    )
