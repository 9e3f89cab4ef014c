"""Data → Exports: add and edit targets, test the connection, run now, the run log."""

from __future__ import annotations

import pytest
from django.test import Client

from exports.crypto import decrypt_json
from exports.models import ExportRun, ExportTarget, RunState
from exports.services import run_execute, target_create
from revops.models import Role
from tests.exports.conftest import D

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(make_user, with_totp):
    person = make_user(Role.FINANCE, email="fin-pages@example.com")
    with_totp(person)
    client = Client()
    client.force_login(person)
    return client


def no_none(html: str) -> str:
    assert "None" not in html and "NaN" not in html
    return html


def test_finance_adds_a_folder_target_and_sees_it_listed(finance, tmp_path):
    response = finance.post(
        "/data/exports/",
        {
            "name": "Lake",
            "url": f"file://{tmp_path}",
            "formats": ["parquet"],
            "tables": ["rollups"],
            "schedule": "daily",
        },
    )

    target = ExportTarget.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/exports/{target.pk}/"
    assert (target.formats, target.tables) == (["parquet"], ["rollups"])
    page = no_none(finance.get(response["Location"]).content.decode())
    assert "Added Lake" in page and "Nothing exported yet." in page
    listing = no_none(finance.get("/data/exports/").content.decode())
    assert "Lake" in listing and "never" in listing


def test_a_target_with_a_bad_url_is_refused_naming_the_problem(finance):
    response = finance.post(
        "/data/exports/",
        {"name": "x", "url": "ftp://h/x", "formats": ["csv"], "tables": ["rollups"], "schedule": "daily"},
    )

    assert response.status_code == 400
    assert "must start with file:/// (a folder) or s3://" in response.content.decode()
    assert not ExportTarget.objects.exists()


def test_s3_credentials_are_stored_encrypted_and_kept_when_the_edit_leaves_them_blank(finance):
    url = "s3://bi/prefix?endpoint=http://127.0.0.1:9&region=us-east-1"
    finance.post(
        "/data/exports/",
        {
            "name": "Bucket",
            "url": url,
            "formats": ["csv"],
            "tables": ["rollups"],
            "schedule": "manual",
            "access_key_id": "AKID",
            "secret_access_key": "s3cr3t-value",
        },
    )
    target = ExportTarget.objects.get()

    response = finance.post(
        f"/data/exports/{target.pk}/",
        {"name": "Bucket 2", "url": url, "formats": ["csv", "parquet"], "tables": ["rollups"], "schedule": "daily"},
    )

    target.refresh_from_db()
    assert response.status_code == 302
    assert target.name == "Bucket 2" and target.formats == ["csv", "parquet"]
    assert "s3cr3t-value" not in target.credentials
    assert decrypt_json(target.credentials) == {"access_key_id": "AKID", "secret_access_key": "s3cr3t-value"}
    assert "s3cr3t-value" not in finance.get(f"/data/exports/{target.pk}/").content.decode()


def test_testing_a_folder_target_says_what_it_checked(finance, tmp_path):
    target = target_create(name="Lake", url=f"file://{tmp_path / 'lake'}", formats=["csv"], tables=["rollups"])

    response = finance.post(f"/data/exports/{target.pk}/test/", follow=True)

    assert f"Wrote, read back and deleted a probe object in folder {tmp_path / 'lake'}." in response.content.decode()
    assert list((tmp_path / "lake" / "_revops_probe").iterdir()) == []


def test_testing_an_unwritable_folder_says_why_it_failed(finance, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    target = target_create(name="Lake", url=f"file://{blocker}/sub", formats=["csv"], tables=["rollups"])

    response = finance.post(f"/data/exports/{target.pk}/test/", follow=True)

    assert "The connection test failed: Cannot write" in response.content.decode()


def test_run_now_queues_the_range_and_the_run_page_shows_what_was_written(finance, world, tmp_path):
    target = target_create(name="Lake", url=f"file://{tmp_path}", formats=["csv"], tables=["rollups", "alerts"])

    response = finance.post(
        f"/data/exports/{target.pk}/run/", {"first_day": "2026-04-29", "last_day": "2026-04-30", "tables": ["rollups"]}
    )

    run = ExportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/exports/runs/{run.pk}/"
    assert run.plan == {"rollups": ["2026-04-29", "2026-04-30"]} and run.state == RunState.QUEUED
    run_execute(run.pk)
    page = no_none(finance.get(response["Location"]).content.decode())
    assert "Succeeded" in page and "2026-04-29 to 2026-04-30 (2 days)" in page
    # rollups: 2 partitions, 3 + 1 rows, 2 × (csv + manifest) files
    assert '<td>rollups</td><td class="num">2</td><td class="num">4</td><td class="num">4</td>' in page
    fragment = finance.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="run-status"') and "<html" not in fragment


def test_run_now_with_a_backwards_range_is_refused_and_nothing_is_queued(finance, tmp_path):
    target = target_create(name="Lake", url=f"file://{tmp_path}", formats=["csv"], tables=["rollups"])

    response = finance.post(
        f"/data/exports/{target.pk}/run/", {"first_day": "2026-05-02", "last_day": "2026-05-01", "tables": ["rollups"]}
    )

    assert response.status_code == 400
    assert "The first day must not be after the last day." in response.content.decode()
    assert not ExportRun.objects.exists()


def test_a_failed_run_says_why_on_its_page(finance, world, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = target_create(name="Lake", url=f"file://{blocker}/sub", formats=["csv"], tables=["rollups"])
    run = ExportRun.objects.create(target=target, plan={"rollups": [D.isoformat()]})

    run_execute(run.pk)

    page = no_none(finance.get(f"/data/exports/runs/{run.pk}/").content.decode())
    assert "Failed" in page and "The run stopped." in page and "Cannot write" in page


def test_an_ae_may_not_open_the_exports_pages(make_user):
    client = Client()
    client.force_login(make_user(Role.AE))

    assert client.get("/data/exports/").status_code == 403
