"""`make test`: lint, migration check and the whole pytest suite, as CI runs them.

Without DATABASE_URL / REDIS_URL the suite runs on the embedded PostgreSQL and Redis,
started once here and shared with every test process (and their workers). Extra arguments go to pytest:
``.venv/bin/python -m revops.devtest -k health``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from revops import devservices


def _step(title: str, cmd: list[str]) -> int:
    print(f"\n==> {title}: {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    code = subprocess.run(cmd, cwd=devservices.BASE_DIR).returncode
    print(f"==> {title}: {'ok' if code == 0 else f'FAILED ({code})'} in {time.monotonic() - started:.1f}s", flush=True)
    return code


def _parallel(pytest_args: list[str]) -> list[str]:
    """One pytest-xdist worker per core unless the caller chose (-n, -p no:xdist) or runs
    a handful of tests by name or -k/-x, where starting workers costs more than it saves."""
    chosen = any(arg.startswith(("-n", "--numprocesses", "-x", "--exitfirst", "-k", "--pdb")) for arg in pytest_args)
    if chosen or "no:xdist" in pytest_args or any(not arg.startswith("-") for arg in pytest_args):
        return []
    # loadgroup: a module marked ``xdist_group`` runs whole in one worker (the fuzz module's
    # last test checks the totals of the properties before it).
    return ["-n", "auto", "--dist", "loadgroup"]


def main(pytest_args: list[str]) -> int:
    os.chdir(devservices.BASE_DIR)
    os.environ["DJANGO_SETTINGS_MODULE"] = "revops.settings.test"
    devservices.stop_on_signals()
    devservices.database_url(create=True)
    devservices.redis_url()
    bin_dir = os.path.dirname(sys.executable)
    failures = 0
    failures += _step("ruff", [os.path.join(bin_dir, "ruff"), "check", "."]) != 0
    failures += _step("migrations", [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"]) != 0
    failures += _step("pytest", [sys.executable, "-m", "pytest", *_parallel(pytest_args), *pytest_args]) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
