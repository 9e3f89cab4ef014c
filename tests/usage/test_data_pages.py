"""Imports, quarantine and API key pages: permissions, the job flow, the one-time secret."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from revops.api_keys import api_key_create
from revops.models import ApiKey, Role
from usage.ingestion import jobs
from usage.ingestion.jobs import import_job_run
from usage.models import ImportJob, QuarantinedEvent, UsageEvent

pytestmark = pytest.mark.django_db

USAGE_CSV = b"id,account,meter,time,quantity\nu1,acme,api-calls,2026-10-01T10:00:00Z,5\nu2,ghost,api-calls,2026-10-01T10:00:00Z,1\n"
BAD_CSV = b"id,account,meter,time,quantity\nu1,acme,api-calls,2026-10-01T10:00:00Z,5\nu2,acme,api-calls,2026-10-01,x\n"


@pytest.fixture
def finance(make_user, with_totp):
    user = make_user(Role.FINANCE)
    with_totp(user)
    return user


@pytest.fixture
def admin(make_user, with_totp):
    user = make_user(Role.ADMIN)
    with_totp(user)
    return user


def upload(client, content: bytes, kind: str = "usage", name: str = "usage.csv"):
    return client.post(reverse("usage:imports"), {"kind": kind, "file": SimpleUploadedFile(name, content)})


@pytest.mark.parametrize("name", ["usage:imports", "usage:quarantine", "usage:api_keys"])
def test_an_ae_cannot_reach_data_pages(client, ae, name):
    client.force_login(ae)

    assert client.get(reverse(name)).status_code == 403


def test_finance_manages_imports_and_api_keys(client, finance):
    client.force_login(finance)

    assert client.get(reverse("usage:imports")).status_code == 200
    assert client.get(reverse("usage:api_keys")).status_code == 200


@pytest.mark.parametrize("role", [Role.AE, Role.CSM, Role.LEADER, Role.PRODUCT])
def test_only_finance_and_admin_create_or_revoke_keys(client, make_user, role, admin):
    key, _ = api_key_create(name="billing", scopes=[ApiKey.Scope.EVENTS_WRITE], created_by=admin)
    client.force_login(make_user(role))

    assert client.post(reverse("usage:api_keys"), {"name": "x", "scopes": ["read"]}).status_code == 403
    assert client.post(reverse("usage:api_key_revoke", args=[key.pk])).status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_finance_creates_a_bi_key_that_reads_as_a_leader_and_the_list_says_so(client, finance, make_user):
    leader = make_user(Role.LEADER, name="Lee Leader")
    client.force_login(finance)

    page = client.post(
        reverse("usage:api_keys"),
        {"name": "BI tool", "scopes": ["read"], "reads_as": leader.pk, "rate_limit_per_minute": 60},
        follow=True,
    )

    key = ApiKey.objects.get()
    assert (key.created_by, key.acts_as, key.scopes) == (finance, leader, ["read"])
    assert "Everything Lee Leader (leader) may see" in page.content.decode()


def test_finance_cannot_make_a_key_that_reads_as_an_admin(client, finance, admin):
    client.force_login(finance)

    page = client.post(reverse("usage:api_keys"), {"name": "root", "scopes": ["read"], "reads_as": admin.pk})

    assert page.status_code == 200 and "reads_as" in page.context["form"].errors
    assert not ApiKey.objects.exists()


def test_an_uploaded_file_is_queued_then_imported_by_the_job(
    client, finance, acme, meter, django_capture_on_commit_callbacks
):
    client.force_login(finance)

    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(client, USAGE_CSV)

    job = ImportJob.objects.get()
    assert response["Location"] == reverse("usage:import_job", args=[job.pk])
    assert (job.status, job.size_bytes, job.created_by) == ("queued", len(USAGE_CSV), finance)
    assert len(callbacks) == 1  # the task is sent only once the job row is committed

    import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.summary == {"rows": 2, "accepted": 1, "duplicates": 0, "quarantined": 1}
    assert UsageEvent.objects.count() == 1 and QuarantinedEvent.objects.count() == 1
    page = client.get(reverse("usage:import_job", args=[job.pk])).content.decode()
    assert "Imported" in page and "hx-trigger" not in page  # finished: no more polling


def test_finance_cannot_make_itself_admin_through_a_people_upload(client, finance):
    client.force_login(finance)
    upload(client, f"email,name,role\n{finance.email},Finn Ance,admin\n".encode(), kind="people", name="people.csv")
    job = ImportJob.objects.get()

    import_job_run(job.pk)

    job.refresh_from_db()
    finance.refresh_from_db()
    assert job.status == "failed" and finance.role == Role.FINANCE
    assert job.errors == [
        {
            "line": 2,
            "column": "role",
            "reason": f"only an admin can change a role: {finance.email} is finance / deal desk, the file says admin",
        }
    ]
    assert "only an admin can change a role" in client.get(reverse("usage:import_job", args=[job.pk])).content.decode()


def test_a_job_runs_once_even_if_delivered_twice(client, finance, acme, meter):
    client.force_login(finance)
    upload(client, USAGE_CSV)
    job = ImportJob.objects.get()

    assert import_job_run(job.pk) is not None
    assert import_job_run(job.pk) is None
    assert UsageEvent.objects.count() == 1


def test_a_rejected_file_lists_its_problems_on_the_job_page(client, finance, acme, meter):
    client.force_login(finance)
    upload(client, BAD_CSV)
    job = ImportJob.objects.get()

    import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.errors == [
        {"line": 3, "column": "time", "reason": "'2026-10-01' is not an RFC 3339 timestamp"},
        {"line": 3, "column": "quantity", "reason": "'x' is not a number"},
    ]
    assert not UsageEvent.objects.exists()
    page = client.get(reverse("usage:import_job", args=[job.pk])).content.decode()
    assert "Nothing was imported." in page and "&#x27;x&#x27; is not a number" in page


def test_a_running_job_page_polls_its_own_fragment(client, finance):
    client.force_login(finance)
    upload(client, USAGE_CSV)
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(status="running")

    full = client.get(reverse("usage:import_job", args=[job.pk])).content.decode()
    fragment = client.get(reverse("usage:import_job", args=[job.pk]), headers={"HX-Request": "true"}).content.decode()

    assert 'hx-trigger="every 1s"' in full and "<html" in full
    assert 'id="job-status"' in fragment and "<html" not in fragment and "<progress" in fragment


def test_an_empty_or_non_csv_upload_is_refused_on_the_form(client, finance):
    client.force_login(finance)

    empty = upload(client, b"")
    wrong = upload(client, b"x", name="usage.xlsx")

    assert empty.status_code == 200 and wrong.status_code == 200
    assert "Upload a .csv file" in wrong.content.decode()
    assert not ImportJob.objects.exists()


def test_quarantine_page_groups_by_reason_and_replay_ingests(client, finance, acme, meter, post_events):
    from tests.usage.test_api_events import recent_event

    post_events([recent_event("q1", account="late-co"), recent_event("q2", account="late-co")])
    client.force_login(finance)
    page = client.get(reverse("usage:quarantine")).content.decode()
    assert "unknown account &#x27;late-co&#x27;" in page

    from accounts.models import Account

    Account.objects.create(external_id="late-co", name="Late Co", segment="smb")
    client.post(reverse("usage:quarantine_replay"))

    assert UsageEvent.objects.filter(account__external_id="late-co").count() == 2
    assert not QuarantinedEvent.objects.exists()


def test_admin_creates_a_key_sees_the_secret_once_and_can_revoke_it(client, admin):
    client.force_login(admin)

    created = client.post(
        reverse("usage:api_keys"),
        {"name": "billing", "scopes": ["events:write"], "rate_limit_per_minute": 100},
        follow=True,  # post/redirect/get: the secret is on the page the redirect leads to
    )
    assert created.redirect_chain == [(reverse("usage:api_keys"), 302)]
    key = ApiKey.objects.get()
    secret = created.context["new_secret"]
    assert secret.startswith("rvk_") and secret in created.content.decode()
    assert created["Cache-Control"] == "no-store"
    assert secret not in client.get(reverse("usage:api_keys")).content.decode()

    client.post(reverse("usage:api_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_upload_is_imported_by_a_real_worker(client, celery_worker, celery_redis_url, make_user, with_totp):
    from accounts.models import Account
    from usage.models import Meter, MeterTier

    Account.objects.create(external_id="acme", name="Acme", segment="smb")
    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="0.001")
    user = make_user(Role.FINANCE)
    with_totp(user)
    worker = celery_worker(celery_redis_url)
    client.force_login(user)

    upload(client, USAGE_CSV)

    job = ImportJob.objects.get()
    deadline = time.monotonic() + 30
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.status == "succeeded", worker.log()
    assert UsageEvent.objects.count() == 1


@pytest.fixture
def broker_away():
    """A broker nobody answers on (port 1), for the app as the web process uses it."""
    from celery import current_app

    app = current_app._get_current_object()
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.pool.force_close_all()
    yield
    app.conf.broker_url = original
    app.pool.force_close_all()


@pytest.mark.django_db(transaction=True)
def test_an_upload_while_the_broker_is_away_is_kept_and_sent_later(client, finance, broker_away):
    client.force_login(finance)
    started = time.monotonic()
    response = upload(client, USAGE_CSV)

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("usage:import_job", args=[job.pk])
    assert job.status == "queued" and time.monotonic() - started < 10
    ImportJob.objects.filter(pk=job.pk).update(created_at=job.created_at - jobs.QUEUED_RESEND_AFTER * 2)
    assert jobs.import_jobs_stale() == [job.pk]  # the sweep's next minute sends it


@pytest.mark.django_db(transaction=True)
def test_with_the_cache_away_logins_events_and_reads_keep_answering(client, settings, make_user, ae):
    from tests.factories import TEST_PASSWORD

    settings.CACHES = {
        "default": {
            "BACKEND": "revops.cache.ResilientRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    _, write = api_key_create(name="pipeline", scopes=[ApiKey.Scope.EVENTS_WRITE])
    _, read = api_key_create(name="bi", scopes=[ApiKey.Scope.READ], acts_as=ae)

    login = client.post(reverse("account_login"), {"login": ae.email, "password": TEST_PASSWORD})
    events = client.post(
        "/api/v1/events", "[]", content_type="application/json", headers={"Authorization": f"Bearer {write}"}
    )
    reads = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {read}"})

    assert login.status_code == 302 and "_auth_user_id" in client.session
    assert events.status_code == 200 and events.json()["accepted"] == 0
    assert reads.status_code == 200


@pytest.mark.parametrize("kind", ["people", "accounts", "contracts", "owners", "meters", "releases", "usage"])
def test_a_nul_byte_inside_an_uploaded_file_is_a_line_and_column_error(client, admin, kind):
    """A NUL (which PostgreSQL text cannot hold) used to fail the job with a generic message."""
    lines = (jobs.settings.BASE_DIR / "docs" / "examples" / f"{kind}.csv").read_bytes().splitlines()
    first_value, rest = lines[1].split(b",", 1)
    lines[1] = first_value[:2] + b"\x00" + first_value[2:] + b"," + rest
    client.force_login(admin)
    upload(client, b"\n".join(lines) + b"\n", kind=kind, name=f"{kind}.csv")
    job = ImportJob.objects.get()

    import_job_run(job.pk)

    job.refresh_from_db()
    column = lines[0].split(b",")[0].decode()
    assert job.status == "failed", job.summary
    assert {"line": 2, "column": column} == {k: job.errors[0][k] for k in ("line", "column")}, job.errors
    assert "NUL" in job.errors[0]["reason"]
    page = client.get(reverse("usage:import_job", args=[job.pk]))
    assert page.status_code == 200 and "NUL character" in page.content.decode()


def test_the_changes_an_import_job_makes_are_recorded_as_made_by_the_uploader(client, finance):
    from accounts.models import Account

    client.force_login(finance)
    upload(client, b"external_id,name,segment\nnew-co,New Co,Enterprise\n", kind="accounts", name="accounts.csv")
    job = ImportJob.objects.get()

    import_job_run(job.pk)

    account = Account.objects.get(external_id="new-co")
    event = Account.pgh_event_model.objects.filter(pgh_obj=account).get()
    assert event.pgh_context.metadata == {"user": finance.pk, "import_job": job.pk}


def test_a_usage_upload_can_declare_usage_complete_from_a_day(client, finance, acme, meter):
    from usage.models import UsageHistory

    client.force_login(finance)
    refused = client.post(
        reverse("usage:imports"),
        {"kind": "people", "file": SimpleUploadedFile("p.csv", b"email,name\n"), "complete_from": "2026-01-01"},
    )
    assert refused.status_code == 200 and "Only a usage file can declare usage complete." in refused.content.decode()
    assert not ImportJob.objects.exists()

    client.post(
        reverse("usage:imports"),
        {"kind": "usage", "file": SimpleUploadedFile("usage.csv", USAGE_CSV), "complete_from": "2025-12-01"},
    )
    job = ImportJob.objects.get()
    import_job_run(job.pk)

    job.refresh_from_db()
    history = UsageHistory.current()
    assert job.summary["usage complete from"] == "2025-12-01"
    assert (history.complete_from.isoformat(), history.declared_by, history.source) == (
        "2025-12-01",
        finance,
        "import of usage.csv",
    )


def test_import_usage_declares_complete_from_and_refuses_a_bad_day(tmp_path, acme, meter):
    from django.core.management import CommandError, call_command

    from usage.models import UsageHistory

    path = tmp_path / "usage.csv"
    path.write_bytes(USAGE_CSV)
    with pytest.raises(CommandError, match="not a date"):
        call_command("import_usage", str(path), "--complete-from", "yesterday")
    assert not UsageEvent.objects.exists()

    call_command("import_usage", str(path), "--complete-from", "2026-01-15")

    assert UsageHistory.current().complete_from.isoformat() == "2026-01-15"
    assert UsageHistory.current().source == "import_usage usage.csv"


def test_an_admin_sets_the_complete_from_day_on_the_settings_page(client, admin):
    from usage.models import UsageHistory

    client.force_login(admin)
    response = client.post(reverse("usage:alert_settings"), {"form": "history", "complete_from": "2025-06-01"})

    assert response.status_code == 302
    assert UsageHistory.current().complete_from.isoformat() == "2025-06-01"
    page = client.get(reverse("usage:alert_settings")).content.decode()
    assert "Usage history complete from: 2025-06-01." in page and "set by an admin" in page
