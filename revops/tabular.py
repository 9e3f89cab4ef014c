"""CSV files in: header checks and the all-or-nothing error report shared by every import.

A report lists every problem as (line, column, reason), up to ``MAX_LISTED`` of them,
with the total count; an import with any problem imports nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from revops.errors import ApplicationError

MAX_LISTED = 1000
BOM = b"\xef\xbb\xbf"


@dataclass
class ImportReport:
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    summary: dict[str, int] = field(default_factory=dict)

    def add(self, line: int, column: str, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append({"line": line, "column": column, "reason": reason})

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def lines(self) -> list[str]:
        """Human-readable, one problem a line, as the command prints them."""
        out = [f"line {e['line']}, column {e['column']}: {e['reason']}" for e in self.errors]
        if self.error_count > len(self.errors):
            out.append(f"… and {self.error_count - len(self.errors)} more problems")
        return out


class ImportRejected(ApplicationError):
    """The file was refused as a whole; ``report`` says why, line by line."""

    def __init__(self, report: ImportReport) -> None:
        first = report.errors[0] if report.errors else {"line": 0, "column": "", "reason": "invalid file"}
        super().__init__(
            f"Nothing was imported: {report.error_count} problem(s), the first on line {first['line']}"
            f" ({first['column']}: {first['reason']})."
        )
        self.report = report


def read_header(
    stream: BinaryIO, *, required: list[str], optional: list[str] | None = None, allow_extra: bool = False
) -> list[str]:
    """Read and check the header line of a comma-separated UTF-8 file; return its column names.

    Leaves ``stream`` positioned at the first data line. A byte-order mark is skipped.
    """
    report = ImportReport()
    first = stream.readline()
    if first.startswith(BOM):
        first = first[len(BOM) :]
    try:
        text = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        report.add(1, "", "the file is not UTF-8 text")
        raise ImportRejected(report) from None
    if not text.strip():
        report.add(1, "", "the file is empty or has no header line")
        raise ImportRejected(report)
    if "," not in text:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if delimiter in text:
                report.add(1, "", f"the columns are separated by {name}; use commas")
                raise ImportRejected(report)
    columns = [c.strip().lower() for c in next(csv.reader([text]))]
    known = set(required) | set(optional or [])
    seen: set[str] = set()
    for column in columns:
        if not column:
            report.add(1, "", "a column has no name")
        elif column in seen:
            report.add(1, column, "appears twice in the header")
        elif column not in known and not allow_extra:
            report.add(1, column, f"is not a known column (expected {', '.join(required + (optional or []))})")
        seen.add(column)
    for column in required:
        if column not in seen:
            report.add(1, column, "is a required column but is missing from the header")
    if not report.ok:
        raise ImportRejected(report)
    return columns


def iter_rows(stream: BinaryIO, columns: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for the data lines after ``read_header``; blank lines are skipped."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.reader(text)
    for values in reader:
        line = reader.line_num + 1  # +1: the header was consumed before the reader started
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != len(columns):
            yield line, {"__shape__": f"has {len(values)} fields, the header has {len(columns)}"}
            continue
        yield line, {c: v.strip() for c, v in zip(columns, values, strict=True)}
