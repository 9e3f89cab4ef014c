"""CSV files in: header checks and the all-or-nothing error report shared by every import.

A report lists every problem as (line, column, reason), up to ``MAX_LISTED`` of them,
with the total count; an import with any problem imports nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from django.db import IntegrityError, transaction

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
            # A message may quote the file; NUL cannot be stored in text (or jsonb), so show it as \0.
            self.errors.append(
                {"line": line, "column": column.replace("\x00", "\\0"), "reason": reason.replace("\x00", "\\0")}
            )

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def lines(self) -> list[str]:
        """Human-readable, one problem a line, as the command prints them."""
        out = [
            f"line {e['line']}, column {e['column']}: {e['reason']}"
            if e["column"]
            else f"line {e['line']}: {e['reason']}"
            for e in self.errors
        ]
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
    if "\x00" in text:
        report.add(1, "", "the header contains a NUL character (byte 0), which text cannot hold")
        raise ImportRejected(report)
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


# --- Reference-data files (people, accounts, contracts, …) ----------------------------
# These files are small enough to read whole, so every row is checked (and every
# reference resolved) before anything is written. Cell readers add a problem to the
# report and return None, so one pass over a file lists every bad cell.


class CellError(ValueError):
    """A cell's text is not a value of the expected type; the message is the reason."""


MONEY_PLACES = 2
MONEY_DIGITS = 16
QUANTITY_PLACES = 6
QUANTITY_DIGITS = 28
_DECIMAL = re.compile(r"^\+?(\d+)(?:\.(\d+))?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_decimal(text: str, *, places: int, digits: int) -> Decimal:
    """An exact, non-negative decimal of at most ``places`` decimals and ``digits`` digits in all.

    Never rounds and never goes through a float: "10.005" with two places is an error.
    """
    match = _DECIMAL.match(text)
    if not match:
        if re.match(r"^-\s*\d", text):
            raise CellError(f"{text} is negative; it must be zero or more")
        if re.match(r"^\d{1,3}(,\d{3})+(\.\d+)?$", text):
            raise CellError(f"'{text}' has thousands separators; write it as {text.replace(',', '')}")
        raise CellError(f"'{text[:40]}' is not a number (digits, optionally a point and decimals)")
    whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    if len(fraction) > places:
        raise CellError(f"{text} has more than {places} decimal places")
    if len(whole) > digits - places:
        raise CellError(f"{text} is too large (at most {digits - places} digits before the decimal point)")
    return Decimal(text.lstrip("+"))


def parse_date(text: str) -> dt.date:
    if not _ISO_DATE.match(text):
        raise CellError(f"'{text[:40]}' is not a date in YYYY-MM-DD form")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CellError(f"'{text}' is not a date that exists") from None


@dataclass
class Row:
    """One data row of a reference file, with typed readers for its cells."""

    line: int
    values: dict[str, str]
    report: ImportReport
    ok: bool = True

    def has(self, column: str) -> bool:
        """Whether the file has this column at all (an absent optional column keeps stored values)."""
        return column in self.values

    def error(self, column: str, reason: str) -> None:
        self.ok = False
        self.report.add(self.line, column, reason)

    def text(self, column: str, *, required: bool = False, max_length: int | None = None) -> str:
        value = self.values.get(column, "")
        if not value and required:
            self.error(column, "is required")
        elif max_length is not None and len(value) > max_length:
            self.error(column, f"is longer than {max_length} characters")
            return ""
        return value

    def choice(self, column: str, accepted: dict[str, str], *, default: str | None = None) -> str | None:
        """The canonical value for the cell, looked up case-insensitively in ``accepted``."""
        value = self.values.get(column, "")
        if not value:
            if default is None:
                self.error(column, "is required")
            return default
        canonical = accepted.get(value.lower())
        if canonical is None:
            choices = ", ".join(dict.fromkeys(accepted.values()))
            self.error(column, f"'{value[:40]}' is not one of {choices}")
        return canonical

    def date(self, column: str, *, required: bool = False) -> dt.date | None:
        value = self.values.get(column, "")
        if not value:
            if required:
                self.error(column, "is required")
            return None
        try:
            return parse_date(value)
        except CellError as exc:
            self.error(column, str(exc))
            return None

    def decimal(
        self, column: str, *, places: int = MONEY_PLACES, digits: int = MONEY_DIGITS, required: bool = False
    ) -> Decimal | None:
        value = self.values.get(column, "")
        if not value:
            if required:
                self.error(column, "is required")
            return None
        try:
            return parse_decimal(value, places=places, digits=digits)
        except CellError as exc:
            self.error(column, str(exc))
            return None

    def integer(self, column: str, *, default: int, minimum: int, maximum: int) -> int | None:
        value = self.values.get(column, "")
        if not value:
            return default
        if not re.match(r"^\+?\d+$", value):
            self.error(column, f"'{value[:40]}' is not a whole number")
            return None
        number = int(value)
        if not minimum <= number <= maximum:
            self.error(column, f"{number} is out of range ({minimum} to {maximum})")
            return None
        return number


def read_rows(
    stream: BinaryIO, *, required: list[str], optional: list[str] | None = None
) -> tuple[list[str], list[Row], ImportReport]:
    """Read a whole reference file: check the header, then split every data line into a ``Row``.

    Raises ``ImportRejected`` for a bad header, text that is not UTF-8 or a file without
    rows; lines with the wrong number of fields are reported (in the returned report) and
    left out of the rows.
    """
    columns = read_header(stream, required=required, optional=optional)
    report = ImportReport()
    data = stream.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.add(data.count(b"\n", 0, exc.start) + 2, "", "is not valid UTF-8 text")
        raise ImportRejected(report) from None
    rows: list[Row] = []
    try:
        for line, values in iter_rows(io.BytesIO(data), columns):
            if "__shape__" in values:
                report.add(line, "", values["__shape__"])
                continue
            with_nul = [column for column, value in values.items() if "\x00" in value]
            for column in with_nul:
                report.add(line, column, "contains a NUL character (byte 0), which text cannot hold")
            if not with_nul:
                rows.append(Row(line, values, report))
    except csv.Error as exc:
        report.add(0, "", f"is not readable as CSV ({exc})")
        raise ImportRejected(report) from None
    if not rows and report.ok:
        report.add(2, "", "the file has a header but no rows")
        raise ImportRejected(report)
    return columns, rows, report


def all_or_nothing(service: Callable[..., ImportReport]) -> Callable[..., ImportReport]:
    """Run an import service in one transaction.

    Services check every row before writing, so a constraint that still fails on write
    means someone changed the same records meanwhile: the file is rejected, not crashed on.
    """

    @functools.wraps(service)
    def run(stream: BinaryIO, **options) -> ImportReport:
        try:
            with transaction.atomic():
                return service(stream, **options)
        except IntegrityError:
            report = ImportReport()
            report.add(0, "", "the same records were changed by someone else during the import; try again")
            raise ImportRejected(report) from None

    return run


def reject_if_any(report: ImportReport) -> None:
    """Raise ``ImportRejected`` when the report has a problem, the listed ones in line order."""
    if not report.ok:
        report.errors.sort(key=lambda error: error["line"])
        raise ImportRejected(report)


def find_cycles(parent_of: dict[str, str | None], starts: list[str]) -> dict[str, list[str]]:
    """For each of ``starts`` on a cycle of ``parent_of`` links, the cycle from it back to it.

    ``parent_of`` maps every known key to its parent's key (None at a root); a key whose
    parent is not in the map ends its chain.
    """
    on_cycle: dict[str, list[str]] = {}
    done: set[str] = set()
    for start in starts:
        path: list[str] = []
        position: dict[str, int] = {}
        key: str | None = start
        while key is not None and key not in done and key not in position:
            position[key] = len(path)
            path.append(key)
            key = parent_of.get(key)
        if key is not None and key in position:  # the walk came back to a key of this path
            cycle = path[position[key] :]
            for i, member in enumerate(cycle):
                on_cycle[member] = [*cycle[i:], *cycle[:i], member]
        done.update(path)
    return {key: on_cycle[key] for key in starts if key in on_cycle}


# --- Exports --------------------------------------------------------------------------


def spreadsheet_safe(value) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a quote."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
