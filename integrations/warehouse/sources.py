"""Reading a warehouse source through SQLAlchemy: the query, its cursor filter, streamed rows.

The source's SQL is wrapped, never edited: ``SELECT <mapped columns> FROM (<query>) AS
revops_q WHERE <cursor> > <since>``, so the query may be anything a single SELECT can be.
PostgreSQL warehouses are read with ``COPY (…) TO STDOUT`` (text format, bytes handed on
to revops' own COPY untouched); every other dialect streams rows (``stream_results`` and
``fetchmany``), which the caller writes to the same COPY.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from integrations.crypto import decrypt_json
from integrations.models import CursorKind, WarehouseMode, WarehouseSource
from integrations.warehouse.dialects import DIALECTS, Dialect, connect_args, parse_url
from revops.errors import ApplicationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

FETCH_ROWS = 50_000
# Bytes per block handed from the warehouse's COPY to revops'.
COPY_BLOCK_BYTES = 256 * 1024
PREVIEW_ROWS = 100

# Revops field → required? Per mode, in the order the staging table takes them.
FIELDS: dict[str, list[tuple[str, bool]]] = {
    WarehouseMode.AGGREGATES: [
        ("account", True),
        ("meter", True),
        ("day", True),
        ("quantity", True),
        ("event_count", False),
    ],
    WarehouseMode.EVENTS: [
        ("id", True),
        ("account", True),
        ("meter", True),
        ("time", True),
        ("quantity", True),
        ("properties", False),
    ],
}


def field_names(mode: str) -> list[str]:
    return [name for name, _ in FIELDS[mode]]


def check_single_select(query: str) -> str:
    """The query without a trailing semicolon, if it is one SELECT (or WITH … SELECT).

    A semicolon outside quotes and comments means a second statement: refused. The pull
    also runs in a read-only transaction where the warehouse has one (PostgreSQL)."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise ApplicationError("is required when no table is given", details={"field": "query"})
    quote = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        elif ch == ";":
            raise ApplicationError(
                "must be a single SELECT statement (it has a ';' inside)", details={"field": "query"}
            )
        i += 1
    first = text.split(None, 1)[0].lower().lstrip("(")
    if first not in ("select", "with"):
        raise ApplicationError(
            "must be a single SELECT statement (start with SELECT or WITH)", details={"field": "query"}
        )
    return text


def source_url(source: WarehouseSource):
    return parse_url(decrypt_json(source.url_encrypted)["url"])


def engine_for(source: WarehouseSource) -> tuple[Dialect, Engine]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    dialect, url = source_url(source)
    args = connect_args(dialect)
    if dialect.name == "snowflake":
        # snowflake-sqlalchemy refuses host/port/protocol in the query string (a pasted URL
        # could redirect credentials); here the URL is the operator's own, stored encrypted, and
        # these are how a private-link host or a local Snowflake (fakesnow) is reached.
        for key in ("host", "port", "protocol"):
            if key in url.query:
                value = url.query[key]
                args[key] = int(value) if key == "port" else value
        url = url.difference_update_query(["host", "port", "protocol"])
    # A pull every hour or so: no pool to keep, and no connection left open on the warehouse.
    return dialect, create_engine(url, poolclass=NullPool, connect_args=args)


def parse_cursor(kind: str, text: str) -> dt.datetime | int | None:
    if not text:
        return None
    if kind == CursorKind.ID:
        return int(text)
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def cursor_since(source: WarehouseSource, *, full: bool) -> dt.datetime | int | None:
    """Rows with cursor > this are read: the last cursor minus the lookback (late rows)."""
    last = None if full else parse_cursor(source.cursor_kind, source.last_cursor)
    if last is None or not source.cursor_column:
        return None
    if source.cursor_kind == CursorKind.ID:
        return last - source.lookback
    try:
        return last - dt.timedelta(seconds=source.lookback)
    except OverflowError:  # a lookback reaching before year 1 (the form takes 10**12 hours): every row
        return None


@dataclass(frozen=True)
class Select:
    sql: str  # pyformat placeholders (%(since)s); literal % doubled when there are parameters
    params: dict
    columns: list[str]  # the output columns, in order: the mode's fields, then "cursor"


def build_select(
    source: WarehouseSource, engine: Engine, *, since: dt.datetime | int | None, limit: int | None = None
) -> Select:
    quote = engine.dialect.identifier_preparer.quote
    if source.query.strip():
        inner = check_single_select(source.query)
    elif source.table.strip():
        inner = _table_select(quote, source.table)
    else:
        raise ApplicationError("give a query or a table", details={"field": "query"})
    parts, columns = [], []
    for name, required in FIELDS[source.mode]:
        column = (source.mapping or {}).get(name, "")
        if not column and required:
            raise ApplicationError(f"map the {name} column", details={"field": f"map_{name}"})
        parts.append(f"revops_q.{quote(column)} AS {name}" if column else f"NULL AS {name}")
        columns.append(name)
    cursor = source.cursor_column.strip()
    parts.append(f"revops_q.{quote(cursor)} AS revops_cursor" if cursor else "NULL AS revops_cursor")
    columns.append("cursor")
    params: dict = {}
    where = ""
    if cursor and since is not None:
        where = f" WHERE revops_q.{quote(cursor)} > %(since)s"
        params["since"] = since
        inner = inner.replace("%", "%%")  # the driver formats the statement: a literal % must be doubled
    # The newline ends a -- comment the query may end with, before the parenthesis closes.
    sql = f"SELECT {', '.join(parts)} FROM ({inner}\n) revops_q{where}"  # noqa: S608 - identifiers quoted, values bound
    if limit:
        sql += f" LIMIT {int(limit)}"
    return Select(sql, params, columns)


@contextmanager
def warehouse_connection(engine: Engine) -> Iterator:
    with engine.connect() as conn:
        try:
            yield conn
        finally:
            conn.rollback()


def copy_out_chunks(conn, select: Select) -> Iterator[bytearray]:
    """PostgreSQL: the rows as COPY text-format bytes, straight from the warehouse server, in
    blocks of about COPY_BLOCK_BYTES.

    The server sends one message per row. The rows libpq has already received are taken
    straight from it (``PGconn.get_copy_data`` without waiting), and only when none is left
    does psycopg's ``Copy.read`` wait for more: per row, psycopg's wait loop would cost more
    than everything else the pull does in Python."""
    from psycopg import errors, pq

    raw = conn.connection.driver_connection  # the psycopg connection under SQLAlchemy
    with raw.cursor() as cursor, cursor.copy(f"COPY ({select.sql}) TO STDOUT", select.params or None) as copy:
        pgconn = raw.pgconn
        block = bytearray()  # appending a row is a copy; joining many memoryviews costs more
        while True:
            size, data = pgconn.get_copy_data(1)
            if size > 0:
                block += data
                if len(block) >= COPY_BLOCK_BYTES:
                    yield block
                    block = bytearray()
            elif size == 0:  # nothing received yet: wait for it (or for the end) psycopg's way
                data = copy.read()
                if not data:
                    break
                block += data
            else:  # the end of the data arrived with the rest: take the COPY's results from libpq
                failed = None
                while (result := pgconn.get_result()) is not None:
                    if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
                        failed = result
                if failed is not None:  # what psycopg would raise (the source query failed midway)
                    sqlstate = (failed.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
                    message = failed.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or failed.error_message or b""
                    message = message.decode(errors="replace").strip()
                    try:
                        error_class = errors.lookup(sqlstate)
                    except KeyError:
                        error_class = errors.OperationalError
                    raise error_class(message)
                break
        if block:
            yield block


def fetch_batches(conn, select: Select) -> Iterator[list[tuple]]:
    """Any dialect: rows in batches of FETCH_ROWS, the result streamed where the driver can."""
    result = conn.execution_options(stream_results=True).exec_driver_sql(select.sql, select.params or ())
    while batch := result.fetchmany(FETCH_ROWS):
        yield [tuple(row) for row in batch]


def describe_columns(source: WarehouseSource) -> list[str]:
    """The column names the source's query (or table) returns, reading no rows."""
    _, engine = engine_for(source)
    quote = engine.dialect.identifier_preparer.quote
    inner = check_single_select(source.query) if source.query.strip() else _table_select(quote, source.table)
    with warehouse_connection(engine) as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM ({inner}\n) revops_q WHERE 1 = 0")  # noqa: S608
        return [str(name) for name in result.keys()]  # noqa: SIM118 - a Result is not a dict


def _table_select(quote, table: str) -> str:
    """``SELECT * FROM schema.table``, each part quoted as an identifier by the dialect."""
    return "SELECT * FROM " + ".".join(quote(part.strip()) for part in table.split("."))  # noqa: S608


__all__ = ["DIALECTS", "FIELDS", "PREVIEW_ROWS", "build_select", "describe_columns", "engine_for"]
