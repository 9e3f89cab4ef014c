"""Import jobs survive a worker crash: a job left "running" is re-run once its heartbeat is stale."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from usage.ingestion import jobs
from usage.ingestion.jobs import JobStillRunning, import_job_run, import_jobs_stale
from usage.models import ImportJob, ImportKind, UsageEvent
from usage.tasks import requeue_stale_import_jobs, run_import_job

pytestmark = pytest.mark.django_db

USAGE_CSV = b"id,account,meter,time,quantity\nu1,acme,api-calls,2026-10-01T10:00:00Z,5\n"


@pytest.fixture
def job(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    path = jobs.upload_dir() / "crashed.csv"
    path.write_bytes(USAGE_CSV)
    return ImportJob.objects.create(
        kind=ImportKind.USAGE, file_name="usage.csv", path=str(path), sha256="x", size_bytes=len(USAGE_CSV)
    )


def crashed(job: ImportJob, *, heartbeat_age: dt.timedelta | None) -> ImportJob:
    """The state a worker killed mid-import leaves: running, the file still there, nothing imported."""
    heartbeat = None if heartbeat_age is None else timezone.now() - heartbeat_age
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, heartbeat_at=heartbeat, bytes_done=10)
    return job


def test_a_job_claimed_from_the_queue_records_a_heartbeat(job, acme, meter):
    before = timezone.now()

    import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.heartbeat_at >= before


def test_a_redelivered_job_whose_worker_still_beats_is_left_alone_and_looked_at_later(job, acme, meter):
    crashed(job, heartbeat_age=dt.timedelta(seconds=20))

    with pytest.raises(JobStillRunning) as caught:
        import_job_run(job.pk)

    stale_in = (jobs.STALE_AFTER - dt.timedelta(seconds=20)).total_seconds()
    assert stale_in <= caught.value.retry_in_s <= stale_in + 2
    assert ImportJob.objects.get(pk=job.pk).status == "running"
    assert not UsageEvent.objects.exists()


def test_a_job_whose_worker_died_is_run_again_once_its_heartbeat_is_stale(job, acme, meter):
    crashed(job, heartbeat_age=jobs.STALE_AFTER + dt.timedelta(seconds=1))

    assert import_jobs_stale() == [job.pk]
    assert import_job_run(job.pk) is not None

    job.refresh_from_db()
    assert (job.status, job.summary["accepted"]) == ("succeeded", 1)
    assert UsageEvent.objects.count() == 1
    assert import_jobs_stale() == []
    assert import_job_run(job.pk) is None  # finished: a later delivery does nothing


def test_a_running_job_without_any_heartbeat_is_stale_once_old_enough(job, acme, meter):
    crashed(job, heartbeat_age=None)
    assert import_jobs_stale() == []  # just created: its worker may still be starting

    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - jobs.STALE_AFTER * 2)

    assert import_jobs_stale() == [job.pk]
    assert import_job_run(job.pk).status == "succeeded"


def test_the_task_retries_while_the_job_looks_alive_then_runs_it(job, acme, meter, monkeypatch):
    crashed(job, heartbeat_age=dt.timedelta(seconds=5))

    with pytest.raises(Retry):
        run_import_job.apply(args=[job.pk], throw=True)

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - jobs.STALE_AFTER * 2)
    assert run_import_job.apply(args=[job.pk], throw=True).get() == "succeeded"


def test_the_sweep_resends_only_stale_jobs(job, acme, meter, monkeypatch):
    sent = []
    monkeypatch.setattr(run_import_job, "apply_async", lambda args, **options: sent.append(args[0]))
    crashed(job, heartbeat_age=dt.timedelta(seconds=5))

    assert requeue_stale_import_jobs() == [] and sent == []

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - jobs.STALE_AFTER * 2)
    assert requeue_stale_import_jobs() == [job.pk] and sent == [job.pk]


def test_a_queued_job_whose_task_was_never_sent_is_sent_by_the_sweep(job, monkeypatch):
    sent = []
    monkeypatch.setattr(run_import_job, "apply_async", lambda args, **options: sent.append(args[0]))

    assert requeue_stale_import_jobs() == []  # just queued: its own task is on its way

    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - jobs.QUEUED_RESEND_AFTER * 2)
    assert requeue_stale_import_jobs() == [job.pk] and sent == [job.pk]
