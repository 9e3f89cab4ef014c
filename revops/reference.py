"""The product's own reference: the Markdown files under ``docs/`` served as pages.

``docs/metrics.md`` defines every metric, band, alert, comp rule and forecast; pages link
each metric's label to its entry (``{% metric %}`` in ``revops/templatetags/reference.py``)
through one anchor per metric (``<a id="burn_rate"></a>``). The files are read once per
change of their modification time, so editing a doc needs no restart.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import markdown
from django.conf import settings
from django.urls import reverse

DOCS_DIR = Path(settings.BASE_DIR) / "docs"
# Served documents: URL name → (file, title). Nothing else under docs/ is reachable.
DOCUMENTS = {
    "metrics": ("metrics.md", "Metrics reference"),
    "imports": ("imports.md", "Import file reference"),
    "plans": ("plans.md", "Comp plan reference"),
    "warehouse": ("warehouse.md", "Warehouse source reference"),
    "billing": ("billing.md", "Billing sources (Stripe) reference"),
    "exports": ("exports.md", "Exports for BI reference"),
    "webhooks": ("webhooks.md", "Webhooks out reference"),
    "sso": ("sso.md", "Single sign-on and SCIM reference"),
    "scaling": ("scaling.md", "Scaling: what one machine holds, what to add"),
}
ANCHOR = re.compile(r'<a id="([a-z0-9_-]+)"></a>')
# Links between the documents ("plans.md#ramp", "docs/imports.md") become links to their pages,
# and links to the example files (examples/people.csv) to their downloads.
DOC_LINK = re.compile(r'href="(?:\./|docs/)?(' + "|".join(DOCUMENTS) + r')\.md(#[^"]*)?"')
EXAMPLE_LINK = re.compile(r'href="(?:\./|docs/)?examples/([A-Za-z0-9_-]+\.(?:csv|yaml))?"')
EXAMPLES_DIR = DOCS_DIR / "examples"


@dataclass(frozen=True)
class Document:
    name: str
    title: str
    html: str
    anchors: frozenset[str]


_cache: dict[str, tuple[float, Document]] = {}
_checked: dict[str, float] = {}  # name → when its file was last stat()ed (monotonic)
RECHECK_S = 2.0  # a page with 20 metric labels looks at the file once, not 20 times
_lock = threading.Lock()


def document(name: str) -> Document | None:
    """The rendered document, or None for a name that is not served."""
    if name not in DOCUMENTS:
        return None
    cached = _cache.get(name)
    if cached and time.monotonic() - _checked.get(name, 0.0) < RECHECK_S:
        return cached[1]
    filename, title = DOCUMENTS[name]
    path = DOCS_DIR / filename
    _checked[name] = time.monotonic()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    if cached and cached[0] == mtime:
        return cached[1]
    with _lock:
        source = path.read_text(encoding="utf-8")
        html = markdown.markdown(source, extensions=["tables", "fenced_code", "toc", "sane_lists"])
        html = DOC_LINK.sub(lambda m: f'href="{doc_url(m.group(1))}{m.group(2) or ""}"', html)
        html = EXAMPLE_LINK.sub(lambda m: f'href="{example_url(m.group(1))}"', html)
        doc = Document(name, title, html, frozenset(ANCHOR.findall(source)))
        _cache[name] = (mtime, doc)
        return doc


def doc_url(name: str, anchor: str = "") -> str:
    url = reverse("docs", args=[name])
    return f"{url}#{anchor}" if anchor else url


def examples() -> list[str]:
    return sorted(path.name for path in EXAMPLES_DIR.iterdir() if path.suffix in (".csv", ".yaml"))


def example_url(name: str | None) -> str:
    """A file's download, or the list of them (the imports reference) for the folder."""
    if name is None:
        return doc_url("imports")
    return reverse("docs_example", args=[name])


def example_file(name: str) -> Path | None:
    return EXAMPLES_DIR / name if name in examples() else None


def metric_anchors() -> frozenset[str]:
    doc = document("metrics")
    return doc.anchors if doc else frozenset()
