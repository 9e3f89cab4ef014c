"""`make run`: the product with demo data on one machine, nothing but Python required.

Starts (or attaches to) the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL
are set, migrates, loads the demo company when the database is empty, then runs web
(gunicorn), a Celery worker (which completes the demo: comp, forecasts, reviews) and
Celery beat until Ctrl-C, and stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from revops import devservices

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")
SHUTDOWN_GRACE_S = 15


def _wait_until_serving(url: str, procs: dict[str, subprocess.Popen], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _fail_if_any_exited(procs)
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own http:// URL
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status still means "serving"
                return
            time.sleep(0.3)
    raise SystemExit(f"The web server did not answer {url} within {timeout_s:.0f}s.")


def _fail_if_any_exited(procs: dict[str, subprocess.Popen]) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            if proc.returncode in (0, -signal.SIGINT, -signal.SIGTERM):
                # Ctrl-C reaches the whole process group: a child may stop before we notice.
                raise KeyboardInterrupt
            raise SystemExit(f"{name} exited with status {proc.returncode}; stopping everything.")


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ensure_dotenv() -> None:
    """A first `make run` writes .env (git-ignored) so later manage.py commands share its settings."""
    import secrets

    path = devservices.BASE_DIR / ".env"
    if not path.exists():
        path.write_text(
            "# Written by `make run` for local development; see .env.example for every setting.\n"
            f"DEBUG=true\nSECRET_KEY={secrets.token_urlsafe(40)}\n"
        )


def main() -> int:
    os.chdir(devservices.BASE_DIR)
    _ensure_dotenv()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.base")
    os.environ.setdefault("DEBUG", "true")
    devservices.stop_on_signals()
    started = time.monotonic()
    if not os.environ.get("DATABASE_URL"):
        print("Starting the embedded PostgreSQL (.pgdata/) …", flush=True)
    devservices.database_url(create=True)  # children inherit DATABASE_URL: one handle, ours
    if not os.environ.get("REDIS_URL"):
        print("Starting the embedded Redis (.run/redis/) …", flush=True)
    devservices.redis_url()  # likewise REDIS_URL
    (devservices.RUN_DIR / "celery").mkdir(parents=True, exist_ok=True)

    # Migrations and the demo in this process: one Django start-up instead of one per command.
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)
    # The company and its metrics now; comp, forecasts and reviews follow in the worker.
    call_command("seed_demo", "--if-empty", "--background", "--forecast-history")
    connections.close_all()  # the children open their own

    venv_bin = os.path.dirname(sys.executable)
    schedule = str(devservices.RUN_DIR / "celery" / "beat-schedule")
    commands = {
        "web": [
            os.path.join(venv_bin, "gunicorn"),
            "revops.wsgi",
            "--bind",
            f"{HOST}:{PORT}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
            # Import the app once, then fork: workers serve as soon as gunicorn listens.
            "--preload",
        ],
        "worker": [
            os.path.join(venv_bin, "celery"),
            "-A",
            "revops",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--hostname",
            "worker@%h",
        ],
        "beat": [
            os.path.join(venv_bin, "celery"),
            "-A",
            "revops",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            schedule,
        ],
    }
    procs: dict[str, subprocess.Popen] = {}
    url = f"http://{HOST}:{PORT}"
    try:
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, cwd=devservices.BASE_DIR)
        _wait_until_serving(f"{url}/health", procs)
        print(f"Ready in {time.monotonic() - started:.1f}s.", flush=True)
        call_command("demo_logins", url=url)
        while True:
            _fail_if_any_exited(procs)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping …", flush=True)
        return 0
    finally:
        _stop(procs)


if __name__ == "__main__":
    sys.exit(main())
