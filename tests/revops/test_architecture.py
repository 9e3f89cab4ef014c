"""The arrows point one way: core ← accounts ← usage ← comp, forecasting ← reviews; demo on top.

Every import statement counts, at module level or inside a function: a lazy import still
ties two apps together. Migrations count too. A test of the test feeds the checker a
forbidden import to show it would fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = ("revops", "accounts", "usage", "comp", "forecasting", "reviews", "integrations", "webhooks", "exports", "demo")
# What each app may import, besides itself (Django, libraries: anything not in APPS).
ALLOWED = {
    "revops": set(),
    "accounts": {"revops"},
    "usage": {"revops", "accounts"},
    "comp": {"revops", "accounts", "usage"},
    "forecasting": {"revops", "accounts", "usage"},
    "reviews": {"revops", "accounts", "usage", "comp", "forecasting"},
    # CRM connections sit on top of the apps whose data they read and write; nothing imports them.
    "integrations": {"revops", "accounts", "usage", "comp", "forecasting"},
    # Data out: webhooks hear the core's domain events (revops.events); exports read the tables.
    "webhooks": {"revops", "accounts", "usage", "comp", "forecasting", "reviews"},
    "exports": {"revops", "accounts", "usage", "comp", "forecasting", "reviews"},
    "demo": set(APPS) - {"demo", "integrations", "webhooks", "exports"},
}
# Inside usage: data in never imports the signals; the enqueue helpers import no usage
# module (they send tasks by name); no module but the tasks themselves imports them.
INSIDE_USAGE = (
    ("usage.ingestion", "usage.signals", "data in does not depend on the signals computed from it"),
    ("usage.enqueue", "usage", "enqueue sends tasks by name and imports no usage module"),
)


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``source``, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # "from usage import tasks" imports the module usage.tasks
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def violations(sources: dict[str, str]) -> list[str]:
    """Every import in ``sources`` ({"usage/x.py": source}) that breaks a rule, in words."""
    problems = []
    for path, source in sorted(sources.items()):
        here = module_name(path)
        app = here.split(".")[0]
        for line, target in imported_modules(source):
            other = target.split(".")[0]
            where = f"{path}:{line} imports {target}"
            if other in APPS and other != app and other not in ALLOWED[app]:
                problems.append(f"{where}: {app} may import only {sorted(ALLOWED[app]) or 'no app'}")
            for inside, forbidden, why in INSIDE_USAGE:
                if (here == inside or here.startswith(inside + ".")) and (
                    target == forbidden or target.startswith(forbidden + ".")
                ):
                    problems.append(f"{where}: {why}")
            if target == "usage.tasks" and here != "usage.tasks":
                problems.append(f"{where}: only the worker runs tasks; enqueue through usage.enqueue")
    return problems


def project_sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
    }


def test_the_apps_import_only_what_the_architecture_allows():
    assert violations(project_sources()) == []


def test_every_app_is_checked():
    checked = {module_name(path).split(".")[0] for path in project_sources()}

    assert checked == set(APPS)


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("revops/views/pages.py", "from usage.models import Alert", "revops may import only no app"),
        ("accounts/selectors.py", "def f():\n    from usage.signals import metrics", "accounts may import only"),
        ("usage/signals/metrics.py", "import comp.engine", "usage may import only"),
        ("comp/engine.py", "from demo import seed", "comp may import only"),
        ("usage/signals/metrics.py", "from integrations.models import Connection", "usage may import only"),
        ("demo/seed.py", "from integrations import services", "demo may import only"),
        ("usage/ingestion/ingest.py", "from usage.signals.metrics import burn_at", "data in does not depend"),
        ("usage/ingestion/jobs.py", "from usage.tasks import run_import_job", "enqueue through usage.enqueue"),
        ("usage/ingestion/jobs.py", "from usage import tasks", "enqueue through usage.enqueue"),
        ("usage/enqueue.py", "from usage.models import ImportJob", "imports no usage module"),
    ],
)
def test_the_checker_catches_a_forbidden_import(path, source, expected):
    found = violations({path: source})

    assert len(found) >= 1 and any(expected in problem for problem in found), found


def test_the_checker_lets_allowed_imports_through():
    assert (
        violations(
            {
                "reviews/snapshot.py": "from forecasting.waterfall import x\nfrom comp.engine import y",
                "usage/tasks.py": "from usage.ingestion import rollups\nfrom usage.signals.services import r",
                "demo/seed.py": "from reviews.services import z",
                "usage/signals/services.py": "from accounts.models import Account",
            }
        )
        == []
    )
