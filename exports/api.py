"""GET /api/v1/exports/{table}: the BI tables through a keyset cursor, the same columns as the files.

Same authentication and scope as the other read endpoints: a logged-in session, or a read
key acting as its person, who sees exactly the rows their pages show (account metrics and
rollups on the accounts they may see, the alerts they may see, the ledger lines of the
people in their scope). Walk a table with ``next_cursor`` until ``has_more`` is false; keep
the last cursor to read what was added since (docs/exports.md says what each table's
cursor catches).
"""

from __future__ import annotations

import datetime as dt
import re

from django.core import signing
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.security import django_auth

from exports.selectors import TABLES, Table, row_json, table_page
from revops.api_auth import ApiError, ReadKeyAuth

router = Router(tags=["exports"], auth=[ReadKeyAuth(), django_auth])

ERRORS = {400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 429: ApiError}
MAX_LIMIT = 5000
DEFAULT_LIMIT = 1000
CURSOR_SALT = "exports.api.cursor"
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
BAD_CURSOR = "cursor is not one this API issued (pass next_cursor from a previous answer, unchanged)."


class ColumnOut(Schema):
    name: str
    type: str = Field(..., description="string, date, timestamp (UTC), int64, bool, decimal(p,s) or string (JSON).")
    nullable: bool
    description: str


class TableOut(Schema):
    name: str
    title: str
    partition_day: str = Field(..., description="Which day partition (dt=YYYY-MM-DD) a row belongs to.")
    cursor_order: list[str] = Field(..., description="The keyset the cursor walks, in order.")
    columns: list[ColumnOut]


class TablesOut(Schema):
    tables: list[TableOut]


class ExportPage(Schema):
    rows: list[dict] = Field(
        ...,
        description="Rows with the table's columns: decimals as plain decimal strings, dates YYYY-MM-DD, "
        "timestamps ISO 8601 UTC (Z), JSON columns as text; missing values null.",
    )
    next_cursor: str = Field(..., description="Pass as cursor for the rows after these (also once has_more is false).")
    has_more: bool = Field(..., description="More rows exist after this page now.")


def _table_out(table: Table) -> dict:
    return {
        "name": table.name,
        "title": table.title,
        "partition_day": table.day_rule,
        "cursor_order": list(table.keyset),
        "columns": [
            {"name": c.name, "type": c.type_text, "nullable": c.nullable, "description": c.description}
            for c in table.columns
        ],
    }


@router.get(
    "/exports",
    response={200: TablesOut, **ERRORS},
    summary="The exported tables and their columns",
    url_name="export_tables",
)
def tables(request: HttpRequest):
    return {"tables": [_table_out(t) for t in TABLES.values()]}


def _day(name: str, value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value) if ISO_DAY.fullmatch(value) else None
    except ValueError:
        day = None
    if day is None:
        raise HttpError(400, f"{name} must be a date as YYYY-MM-DD, not {value[:40]!r}.")
    return day


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not 1 <= number <= MAX_LIMIT:
        raise HttpError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}; not {value[:40]!r}.")
    return number


def _key_out(value) -> str | int:
    return value.isoformat() if isinstance(value, dt.date) else int(value)


def _key_in(table: Table, key: list) -> list:
    """The keyset position from a cursor, typed as the table's keyset fields are."""
    if len(key) != len(table.keyset):
        raise ValueError("wrong length")
    typed = []
    for name, value in zip(table.keyset, key, strict=True):
        if name == "id":
            if not isinstance(value, int):
                raise ValueError("id")
            typed.append(value)
        elif name == "day":
            typed.append(dt.date.fromisoformat(value))
        else:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("naive")
            typed.append(moment)
    return typed


def _cursor_out(table: Table, key: list | None, since: dt.date | None, until: dt.date | None) -> str:
    body = {
        "t": table.name,
        "k": None if key is None else [_key_out(v) for v in key],
        "s": since.isoformat() if since else None,
        "u": until.isoformat() if until else None,
    }
    return signing.dumps(body, salt=CURSOR_SALT, compress=True)


def _cursor_in(table: Table, cursor: str) -> tuple[list | None, dt.date | None, dt.date | None]:
    try:
        body = signing.loads(cursor, salt=CURSOR_SALT)
        if not isinstance(body, dict) or body.get("t") != table.name:
            raise ValueError("another table's cursor")
        key = None if body.get("k") is None else _key_in(table, body["k"])
        since = dt.date.fromisoformat(body["s"]) if body.get("s") else None
        until = dt.date.fromisoformat(body["u"]) if body.get("u") else None
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        raise HttpError(400, BAD_CURSOR) from None
    return key, since, until


@router.get(
    "/exports/{table}",
    response={200: ExportPage, **ERRORS},
    summary="Rows of an exported table, a page at a time",
    url_name="export_rows",
    description=(
        "The rows the caller may see, in the table's cursor order (see GET /exports). `since` and `until` "
        "limit the rows to partition days (inclusive); a cursor keeps the days it was issued with. "
        "An unknown table is a 404 that lists the tables."
    ),
)
def table_rows(
    request: HttpRequest,
    table: str,
    cursor: str | None = Query(None, description="next_cursor from the previous page; none: from the start."),
    limit: str | None = Query(None, description=f"Rows per page, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT})."),
    since: str | None = Query(None, description="First partition day, YYYY-MM-DD (ignored with a cursor)."),
    until: str | None = Query(None, description="Last partition day, YYYY-MM-DD (ignored with a cursor)."),
):
    definition = TABLES.get(table)
    if definition is None:
        raise HttpError(404, f"No exported table {table[:40]!r}; the tables are {', '.join(TABLES)}.")
    size = _limit(limit)
    if cursor:
        after, first, last = _cursor_in(definition, cursor)
    else:
        after, first, last = None, _day("since", since), _day("until", until)
        if first and last and first > last:
            raise HttpError(400, f"since ({first}) is after until ({last}).")
    page = table_page(table=definition, person=request.auth, after=after, limit=size, since=first, until=last)
    return {
        "rows": [row_json(definition, row) for row in page.rows],
        "next_cursor": _cursor_out(definition, page.last_key, first, last),
        "has_more": page.has_more,
    }
