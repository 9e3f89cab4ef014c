"""Helpers shared by the tests of every CSV import."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from revops.tabular import ImportRejected

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def example(name: str) -> io.BytesIO:
    """One of the documented example files under docs/examples/."""
    return io.BytesIO((EXAMPLES / f"{name}.csv").read_bytes())


def csv_file(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def rejected(importer: Callable, stream) -> list[dict]:
    """The listed problems of an import that must be refused."""
    with pytest.raises(ImportRejected) as caught:
        importer(stream)
    return caught.value.report.errors
