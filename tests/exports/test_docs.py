"""docs/exports.md documents every column of every table, and is served in the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from exports.selectors import TABLES
from revops.models import Role

DOC = (Path(settings.BASE_DIR) / "docs" / "exports.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("table", list(TABLES.values()), ids=list(TABLES))
def test_every_column_is_documented_with_its_type_and_nullability(table):
    for c in table.columns:
        row = f"| `{c.name}` | {c.type_text} | {'yes' if c.nullable else 'no'} | {c.description} |"
        assert row in DOC, f"{table.name}.{c.name} is not documented as the code defines it"


def test_the_exports_reference_is_served_in_the_app(make_user):
    client = Client()
    client.force_login(make_user(Role.AE))

    page = client.get("/docs/exports/").content.decode()

    assert "Exports for BI" in page and "sources.yml" in page and "cursor is not one this API issued" in page
