"""Import jobs: an uploaded file, imported by a Celery worker, progress shown on the page."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from revops.audit import acting_as
from revops.errors import ApplicationError
from revops.events import emit
from revops.tabular import ImportRejected, ImportReport
from usage.enqueue import enqueue_import_job
from usage.models import ImportJob, ImportKind

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024**3
# A queued job whose task has not started by then is sent again by the sweep
# (settings.USAGE_IMPORT_QUEUED_RESEND_AFTER_S, 60 s unless configured).
QUEUED_RESEND_AFTER = dt.timedelta(seconds=settings.USAGE_IMPORT_QUEUED_RESEND_AFTER_S)


def _importers() -> dict[str, Callable[[BinaryIO], object]]:
    from accounts.imports import import_accounts, import_contracts, import_owners
    from revops.people_import import import_people
    from usage.ingestion.csv_import import import_usage_stream
    from usage.ingestion.reference_import import import_meters, import_releases

    return {
        ImportKind.USAGE: import_usage_stream,
        ImportKind.PEOPLE: import_people,
        ImportKind.ACCOUNTS: import_accounts,
        ImportKind.CONTRACTS: import_contracts,
        ImportKind.OWNERS: import_owners,
        ImportKind.METERS: import_meters,
        ImportKind.RELEASES: import_releases,
    }


def upload_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_job_create(*, kind: str, upload: UploadedFile, user, complete_from: dt.date | None = None) -> ImportJob:
    """Keep the uploaded file and queue its import (the task is sent once this commits).
    ``complete_from`` (usage files only): once imported, usage is declared complete from it."""
    if kind not in ImportKind.values:
        raise ApplicationError(f"Unknown import kind '{kind}'.")
    if complete_from is not None and kind != ImportKind.USAGE:
        raise ApplicationError("Only a usage file can declare usage complete.", details={"field": "complete_from"})
    if upload.size and upload.size > MAX_UPLOAD_BYTES:
        raise ApplicationError(f"The file is larger than {MAX_UPLOAD_BYTES // 1024**3} GB.")
    if not upload.name.lower().endswith((".csv", ".txt")):
        raise ApplicationError("Upload a .csv file (comma-separated, UTF-8).")
    target = upload_dir() / f"{uuid.uuid4()}.csv"
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        for chunk in upload.chunks(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size == 0:
        target.unlink(missing_ok=True)
        raise ApplicationError("The file is empty.")
    with transaction.atomic():
        job = ImportJob.objects.create(
            kind=kind,
            file_name=Path(upload.name).name[:255],
            path=str(target),
            sha256=digest.hexdigest(),
            size_bytes=size,
            created_by=user,
            complete_from=complete_from,
        )
        transaction.on_commit(lambda: enqueue_import_job(job.pk))
    return job


def import_job_progress(job: ImportJob) -> int | None:
    """Percent of the file read, while it runs."""
    if job.status != ImportJob.Status.RUNNING:
        return 100 if job.status == ImportJob.Status.SUCCEEDED else None
    return min(99, int(job.bytes_done * 100 / job.size_bytes)) if job.size_bytes else 0


# A running job's worker records a heartbeat this often (from a thread of its own, so long
# SQL statements do not starve it); a job whose heartbeat is older than STALE_AFTER has lost
# its worker (crash, OOM kill, lost node) and may be claimed again. Every import is
# all-or-nothing, so the dead worker left nothing behind and running it again is safe.
# settings.USAGE_IMPORT_HEARTBEAT_S and USAGE_IMPORT_STALE_AFTER_S (30 s and 3 minutes
# unless configured; a test or a fault drill shortens them).
HEARTBEAT_S = settings.USAGE_IMPORT_HEARTBEAT_S
STALE_AFTER = dt.timedelta(seconds=settings.USAGE_IMPORT_STALE_AFTER_S)


class JobStillRunning(Exception):
    """The job is running elsewhere and looks alive: look again once it could be stale."""

    def __init__(self, retry_in_s: int) -> None:
        super().__init__(f"import job is running elsewhere; look again in {retry_in_s} s")
        self.retry_in_s = retry_in_s


class _Heartbeat:
    """Beats for the job through its own autocommit connection until stopped."""

    def __init__(self, job_id: int) -> None:
        from revops.db import side_connection

        self._conn = side_connection()
        self._job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"import-job-{job_id}-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._conn.execute(
                    "UPDATE usage_importjob SET heartbeat_at = now() WHERE id = %s AND status = 'running'",
                    [self._job_id],
                )
            except Exception:  # a missed beat only risks a needless re-run, never a wrong result
                logger.warning("import job %s: heartbeat failed", self._job_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def _claim(job_id: int) -> bool:
    """Claim a queued job, or a running one whose worker stopped beating; exactly one caller wins."""
    now = timezone.now()
    stale = Q(status=ImportJob.Status.RUNNING) & (
        Q(heartbeat_at__lt=now - STALE_AFTER) | Q(heartbeat_at__isnull=True, created_at__lt=now - STALE_AFTER)
    )
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(Q(status=ImportJob.Status.QUEUED) | stale)
        .update(status=ImportJob.Status.RUNNING, heartbeat_at=now, bytes_done=0)
    )
    if claimed:
        return True
    job = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).values("heartbeat_at", "created_at")
    if row := job.first():
        last = row["heartbeat_at"] or row["created_at"]
        raise JobStillRunning(max(1, int((last + STALE_AFTER - now).total_seconds()) + 1))
    return False


def import_jobs_stale() -> list[int]:
    """Jobs for the sweep to re-send (their claim decides whether they run):

    * running jobs whose worker stopped beating;
    * queued jobs older than ``QUEUED_RESEND_AFTER``: the job row is the outbox, so a task
      that was never sent (the broker was away when the upload committed) or was lost is
      sent again, and no upload waits for ever.
    """
    now = timezone.now()
    running = Q(status=ImportJob.Status.RUNNING) & (
        Q(heartbeat_at__lt=now - STALE_AFTER) | Q(heartbeat_at__isnull=True, created_at__lt=now - STALE_AFTER)
    )
    queued = Q(status=ImportJob.Status.QUEUED, created_at__lt=now - QUEUED_RESEND_AFTER)
    return list(ImportJob.objects.filter(running | queued).order_by("pk").values_list("pk", flat=True))


class _ProgressWriter:
    """Records bytes read on the job row through its own autocommit connection.

    The import holds its connection inside COPY (and its transaction would hide the row
    from the polling page anyway), so progress cannot go through Django's connection, nor
    through the database cache, which shares it.
    """

    def __init__(self, job: ImportJob) -> None:
        from revops.db import side_connection

        self._conn = side_connection()
        self._job_id = job.pk
        self._step = max(1, job.size_bytes // 100)  # a write per ~1 %
        self._last = 0

    def __call__(self, done: int) -> None:
        if done - self._last >= self._step:
            self._conn.execute(
                "UPDATE usage_importjob SET bytes_done = %s, heartbeat_at = now() WHERE id = %s", [done, self._job_id]
            )
            self._last = done

    def close(self) -> None:
        self._conn.close()


def import_job_run(job_id: int) -> ImportJob | None:
    """Run a queued job once: the conditional UPDATE lets exactly one worker claim it.

    A job left running by a worker that died (its heartbeat went stale) is claimed and run
    again; while its heartbeat is fresh, ``JobStillRunning`` says when to look again (a
    redelivered task arrives right after the crash, before the heartbeat is stale). A
    finished job returns None.
    """
    if not _claim(job_id):
        return None
    job = ImportJob.objects.get(pk=job_id)
    heartbeat = _Heartbeat(job.pk)
    progress = _ProgressWriter(job)
    importer = _importers()[job.kind]
    try:
        # The audit trail names whoever uploaded the file as the one who made its changes.
        with open(job.path, "rb") as stream, acting_as(job.created_by_id, import_job=job.pk):
            if job.kind == ImportKind.USAGE:
                result = importer(stream, progress=progress)
                summary = {
                    "rows": result.rows,
                    "accepted": result.accepted,
                    "duplicates": result.duplicates,
                    "quarantined": result.quarantined,
                }
                if result.already_imported_on:
                    summary["already imported on"] = f"{result.already_imported_on:%Y-%m-%d %H:%M} UTC"
                if job.complete_from is not None:
                    from usage.ingestion.services import usage_complete_from_declare

                    history = usage_complete_from_declare(
                        day=job.complete_from, by=job.created_by, source=f"import of {job.file_name}"
                    )
                    summary["usage complete from"] = history.complete_from.isoformat()
            elif job.kind == ImportKind.PEOPLE:
                # Roles are the importer's to grant only if they are an admin.
                report = importer(stream, by=job.created_by)
                summary = dict(report.summary)
            else:
                report = importer(stream)
                summary = dict(report.summary)
    except ImportRejected as exc:
        _finish(job, ImportJob.Status.FAILED, errors=exc.report)
    except FileNotFoundError:
        report = ImportReport()
        report.add(0, "", "the uploaded file is gone; upload it again")
        _finish(job, ImportJob.Status.FAILED, errors=report)
    except Exception:
        logger.exception("import job %s crashed", job.pk)
        report = ImportReport()
        report.add(0, "", "the import failed unexpectedly; nothing was imported. The error was logged.")
        _finish(job, ImportJob.Status.FAILED, errors=report)
        raise
    else:
        _finish(job, ImportJob.Status.SUCCEEDED, summary=summary)
    finally:
        heartbeat.stop()
        progress.close()
        Path(job.path).unlink(missing_ok=True)
    return job


def _finish(job: ImportJob, status: str, *, summary: dict | None = None, errors: ImportReport | None = None) -> None:
    job.status = status
    job.finished_at = timezone.now()
    job.summary = summary or {}
    if errors is not None:
        job.errors = errors.errors
        job.error_count = errors.error_count
    with transaction.atomic():
        job.save(update_fields=["status", "finished_at", "summary", "errors", "error_count"])
        if status == ImportJob.Status.FAILED:
            emit(
                "import.failed",
                {
                    "import_job_id": job.pk,
                    "kind": job.kind,
                    "file_name": job.file_name,
                    "error_count": job.error_count,
                    "errors": job.errors[:10],  # line, column, reason; the job page has the first 1,000
                    "created_by": job.created_by.email if job.created_by else "",
                    "finished_at": job.finished_at.isoformat(),
                    "link": f"/data/imports/{job.pk}/",
                },
            )
