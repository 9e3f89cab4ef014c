"""The product's own reference: docs/metrics.md covers every figure the API returns and
every alert kind; it is served in the app; pages link metric labels to its entries; and
nothing in the repository points outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template

from revops.models import Role
from revops.reference import metric_anchors
from revops.templatetags.reference import UnknownMetric
from usage.models import AlertKind
from usage.signals import api as api_metrics
from usage.signals.metrics import DEFINITIONS

# Fields of the metrics API that name or place a figure rather than being one.
NOT_FIGURES = {"account", "account_name", "as_of", "source", "segment", "scope", "id", "owner", "escalated_to"}
NOT_FIGURES |= {"kind", "severity", "state", "snoozed_until", "opened_at", "opened_on", "last_seen_on"}


def _figures(schema) -> set[str]:
    return set(schema.model_fields) - NOT_FIGURES


@pytest.mark.parametrize(
    "schema", [api_metrics.AccountMetricsOut, api_metrics.PortfolioOut, api_metrics.AlertOut], ids=lambda s: s.__name__
)
def test_every_figure_of_the_metrics_api_has_an_entry(schema):
    assert _figures(schema) - metric_anchors() == set()


def test_the_realization_parts_have_their_entries():
    parts = {f"realization_{name}" for name in api_metrics.RealizationOut.model_fields}

    assert parts - metric_anchors() == set()


def test_every_definition_every_alert_kind_and_every_band_has_an_entry():
    expected = set(DEFINITIONS) | {f"alert-{kind}" for kind in AlertKind.values}
    expected |= {"band-expand", "band-adopt", "band-escalate"}
    expected |= {f"health-{part}" for part in ("burn", "trend", "anomalies", "recency", "pacing")}

    assert expected - metric_anchors() == set()


def test_the_reference_has_its_sections_and_worked_examples():
    text = (Path(settings.BASE_DIR) / "docs" / "metrics.md").read_text()

    for heading in ("Account metrics", "Portfolio metrics", "Bands", "Health score", "Alerts", "Compensation"):
        assert re.search(rf"^## .*{heading}", text, re.M), heading
    assert {a for a in metric_anchors() if a.startswith("comp-")}, "comp rules"
    assert {a for a in metric_anchors() if a.startswith("forecast-")}, "forecasts"
    assert "Example" in text or "example" in text


def test_nothing_in_the_repository_points_outside_it():
    tracked = subprocess.run(
        ["git", "grep", "-n", "-I", "--untracked", r"\.\./shared", "--", ".", ":!tests/revops/test_reference.py"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert tracked.stdout == ""
    assert tracked.returncode == 1  # 1: no match (2 would be an error)


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_everyone_reads_the_reference_in_the_app(client, make_user, with_totp, role):
    user = make_user(role)
    with_totp(user)
    client.force_login(user)

    page = client.get("/docs/metrics/")

    assert page.status_code == 200
    html = page.content.decode()
    assert '<a id="burn_rate"></a>' in html and "<table>" in html
    assert 'href="/docs/plans/' in html or "plans.md" not in (Path(settings.BASE_DIR) / "docs/metrics.md").read_text()


@pytest.mark.django_db
def test_the_other_documents_are_served_and_nothing_else(client, ae):
    client.force_login(ae)

    assert client.get("/docs/imports/").status_code == 200
    assert client.get("/docs/plans/").status_code == 200
    assert client.get("/docs/README/").status_code == 404
    assert client.get("/docs/examples/").status_code == 404


@pytest.mark.django_db
def test_the_reference_needs_a_login(client):
    assert client.get("/docs/metrics/").status_code == 302


@pytest.mark.django_db
def test_a_metric_label_links_to_its_entry_and_an_unknown_one_fails_the_page():
    html = Template('{% load reference %}{% metric "burn_rate" "Burn" "Run rate ÷ committed" %}').render(Context())

    assert html == '<a class="metric-label" href="/docs/metrics/#burn_rate" title="Run rate ÷ committed">Burn</a>'
    with pytest.raises(UnknownMetric):
        Template('{% load reference %}{% metric "burn" "Burn" %}').render(Context())


@pytest.mark.django_db
def test_the_example_files_the_references_link_to_download(client, ae):
    client.force_login(ae)

    page = client.get("/docs/imports/").content.decode()
    people = client.get("/docs/examples/people.csv")

    assert 'href="/docs/examples/people.csv"' in page
    assert people.status_code == 200 and people["Content-Type"].startswith("text/csv")
    assert people.content.startswith(b"email,")
    assert client.get("/docs/examples/plans.yaml").status_code == 200
    assert client.get("/docs/examples/..%2Fmetrics.md").status_code == 404
    assert client.get("/docs/examples/secret.csv").status_code == 404
