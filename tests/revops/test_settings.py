"""Settings come from the environment; production passes `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

from revops.devservices import BASE_DIR

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-production-secret-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "revops.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://revops.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_URL": "smtp://mail.example.com:587",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # A clean environment: nothing the test settings exported may leak into "production".
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**base, **env}, capture_output=True, text=True
    )


def test_time_is_stored_in_utc():
    assert settings.USE_TZ is True
    assert settings.TIME_ZONE == "UTC"


def test_database_is_postgresql():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0


def test_production_settings_pass_the_deploy_check():
    env = {**PRODUCTION_ENV, "DATABASE_URL": os.environ["DATABASE_URL"]}

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {**PRODUCTION_ENV, "SECRET_KEY": "", "DATABASE_URL": os.environ["DATABASE_URL"]}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_a_database_url():
    env = {**PRODUCTION_ENV, "DATABASE_URL": ""}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr


def test_sqlite_is_refused():
    env = {**PRODUCTION_ENV, "DATABASE_URL": "sqlite:///tmp/revops.sqlite3"}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr


def test_every_environment_variable_read_by_settings_is_documented():
    import re

    source = (BASE_DIR / "revops" / "settings" / "base.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', source)) | {"DATABASE_URL"}
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", (BASE_DIR / ".env.example").read_text(), re.M))

    assert read - documented == set()


@pytest.mark.parametrize("name", ["CELERY_TASK_ACKS_LATE", "CELERY_TASK_REJECT_ON_WORKER_LOST"])
def test_celery_tasks_are_acknowledged_late(name):
    from revops.celery import app

    key = name.removeprefix("CELERY_").lower()
    assert app.conf[key] is True


def test_redis_visibility_timeout_outlasts_the_hard_time_limit():
    from revops.celery import app

    if app.conf.broker_url.startswith("redis"):
        assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.accept_content == ["json"]


def test_every_beat_schedule_is_in_one_module():
    from revops.celery import app
    from revops.schedules import BEAT_SCHEDULE

    assert app.conf.beat_schedule == BEAT_SCHEDULE
    for entry in BEAT_SCHEDULE.values():
        assert "expires" in entry.get("options", {})


def test_every_task_s_soft_time_limit_is_below_its_hard_one():
    """Celery refuses to send a task whose soft limit exceeds its hard one (beat logs
    "Couldn't apply scheduled task" and the job never runs): a task with a hard limit under
    the default soft one (CELERY_TASK_SOFT_TIME_LIMIT) must set its own soft limit."""
    from revops.celery import app

    app.loader.import_default_modules()
    app.autodiscover_tasks(force=True)
    wrong = {}
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        if hard and soft and soft > hard:
            wrong[name] = (soft, hard)
    assert len([n for n in app.tasks if not n.startswith("celery.")]) > 20
    assert wrong == {}


def test_loading_the_pages_does_not_load_the_connectors_heavy_libraries():
    """pyarrow, stripe and SQLAlchemy (~110 MB resident together) are imported where a
    connector runs, not when the URL conf loads: every web process and management command
    (the system checks load the URL conf) would carry them otherwise."""
    code = (
        "import sys, django; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "print(sorted(m for m in ('pyarrow', 'stripe', 'sqlalchemy', 'snowflake', 'boto3') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revops.settings.test"}
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
