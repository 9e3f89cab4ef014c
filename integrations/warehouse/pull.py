"""One pull of a warehouse source: stream, stage, validate in SQL, apply all or nothing.

Daily aggregates: the rows go into a temporary staging table of text columns (PostgreSQL
warehouses by ``COPY … TO STDOUT`` piped into ``COPY … FROM STDIN``, others by
``fetchmany`` batches written to the same COPY). One SQL pass then types and resolves every
row that a cheap predicate vouches for; when one is not vouched for (or a cast fails) the
detailed rules run over every row and report each problem by row and column, and nothing
is applied. Clean rows go to ``usage.ingestion.aggregates.apply_aggregates`` (replace per
key, signed rollup deltas).

Events: the rows become a CSV stream (columns id, account, meter, time, quantity, source,
properties; the source is the warehouse source's name) read by the CSV import itself
(``usage.ingestion.csv_import``), so deduplication by (source, id), quarantine of unknown
accounts and meters and the all-or-nothing report are the import's own.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, connection, transaction

from integrations.models import CursorKind, WarehouseMode, WarehouseSource
from integrations.warehouse.sources import (
    PREVIEW_ROWS,
    build_select,
    copy_out_chunks,
    cursor_since,
    engine_for,
    fetch_batches,
    warehouse_connection,
)
from revops.errors import ApplicationError
from revops.tabular import MAX_LISTED, ImportRejected
from usage.ingestion import csv_import
from usage.ingestion.aggregates import AggregateResult, apply_aggregates, lock_source
from usage.ingestion.events import (
    MAX_ID_LENGTH,
    QUANTITY_MAX_DECIMALS,
    QUANTITY_MAX_INTEGER_DIGITS,
    QUANTITY_NOT_FINITE_PATTERN,
    QUANTITY_PATTERN,
    EventError,
    parse_native,
)

STAGE_COLUMNS = ["account", "meter", "day", "quantity", "event_count", "cursor"]
DAY_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
ID_CURSOR_PATTERN = r"^[+-]?[0-9]{1,18}$"
TIMESTAMP_CURSOR_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
    r"( ?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?))?$"
)
_WS = r"E' \t\n\r\f\v'"
# Per sort or hash of a pull. A 10 M-row first pull's sort by key (~1 GB) spills past it to
# temporary files; 1 GB, all in memory, measured no faster end to end.
WORK_MEM = "256MB"


@dataclass
class PullReport:
    """Problems by row (1 = the query's first row) and column (the warehouse's name for it)."""

    errors: list[dict] = field(default_factory=list)
    error_count: int = 0

    def add(self, row: int, column: str, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append({"row": row, "column": column, "reason": reason.replace("\x00", "\\0")})

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class PullRejected(ApplicationError):
    def __init__(self, report: PullReport) -> None:
        first = report.errors[0] if report.errors else {"row": 0, "column": "", "reason": "invalid rows"}
        super().__init__(
            f"Nothing was applied: {report.error_count} problem(s), the first on row {first['row']}"
            f" ({first['column']}: {first['reason']})."
        )
        self.report = report


@dataclass
class PullOutcome:
    rows: int = 0
    counts: dict = field(default_factory=dict)
    cursor_after: str = ""
    seconds: float = 0.0
    # Preview only: the first rows as read (field → text) and their problems.
    preview_rows: list[dict] = field(default_factory=list)
    report: PullReport = field(default_factory=PullReport)


def _column_label(source: WarehouseSource, name: str) -> str:
    if name == "cursor":
        return source.cursor_column
    return (source.mapping or {}).get(name) or name


# --- Staging ---------------------------------------------------------------------------------


def _stage(source: WarehouseSource, *, full: bool, limit: int | None) -> tuple[list[str], int]:
    """Read the source into ``_wh_stage``; its column names and row count."""
    dialect, engine = engine_for(source)
    select = build_select(source, engine, since=cursor_since(source, full=full), limit=limit)
    names = select.columns
    cursor = connection.cursor()
    cursor.execute("DROP VIEW IF EXISTS _wh_typed")
    cursor.execute("DROP TABLE IF EXISTS _wh_stage, _wh_rows")
    cursor.execute(
        "CREATE TEMP TABLE _wh_stage (seq bigint GENERATED ALWAYS AS IDENTITY, "
        + ", ".join(f"{name} text" for name in names)
        + ") ON COMMIT DROP"
    )
    into = f"COPY _wh_stage ({', '.join(names)}) FROM STDIN"
    with warehouse_connection(engine) as conn, cursor.copy(into) as copy:
        if dialect.copy_out:
            for chunk in copy_out_chunks(conn, select):
                copy.write(chunk)
        else:
            for batch in fetch_batches(conn, select):
                for row in batch:
                    copy.write_row([_text(value) for value in row])
    if cursor.rowcount >= 0:  # what the COPY reports: no second pass over 10 M staged rows
        return names, cursor.rowcount
    cursor.execute("SELECT count(*) FROM _wh_stage")
    return names, cursor.fetchone()[0]


def _text(value: object) -> str | None:
    """A value as the staging table's text (the rules then read it as a CSV cell)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


# --- Aggregates: rules in SQL ------------------------------------------------------------------


def _trimmed(with_cursor: bool) -> str:
    cursor = "btrim(cursor)" if with_cursor else "NULL::text"
    return (
        "(SELECT seq, btrim(account) AS account, btrim(meter) AS meter, btrim(day, " + _WS + ") AS day,"  # noqa: S608
        " btrim(quantity, " + _WS + ") AS quantity, btrim(event_count) AS event_count, " + cursor + " AS cursor"
        " FROM _wh_stage OFFSET 0) s"
    )


def _typed_select(source: WarehouseSource, *, vouched: bool) -> str:
    """The staged rows typed and resolved: account_id, meter_id, day, quantity numeric(28, 6),
    event_count bigint (the cursor is read apart, by ``_cursor_after``).

    ``vouched``: straight from the staged text, every row vouched for by a cheap predicate of
    exact-text checks; a row it does not vouch for (or a failing cast) fails the statement, and
    then the detailed rules run. A value with surrounding whitespace is never vouched for (the
    exact-text checks, and the joins on keys without any, see it), so it takes the other way:
    ``vouched=False`` trims every value first and casts without checking (the rules found
    nothing wrong). Both give the same rows for the rows they both accept. The trimming costs
    more than everything else together, which is why the usual, clean rows skip it.
    """
    with_cursor = bool(source.cursor_column)
    if vouched:
        rows = (
            "(SELECT seq, account, meter, day, quantity, day::date AS n_day, quantity::numeric AS n_quantity,"
            " NULLIF(event_count, '')::bigint AS n_event_count, cursor FROM _wh_stage OFFSET 0) s"
        )
        # Keys with surrounding spaces would match untrimmed values only: left to the rules.
        accounts = "(SELECT id, external_id FROM accounts_account WHERE external_id = btrim(external_id))"
        meters = "(SELECT id, key FROM usage_meter WHERE key = btrim(key))"
    else:
        rows = (
            "(SELECT seq, day::date AS n_day, quantity::numeric AS n_quantity,"  # noqa: S608
            " NULLIF(event_count, '')::bigint AS n_event_count, account, meter FROM " + _trimmed(with_cursor) + ") s"
        )
        accounts, meters = "accounts_account", "usage_meter"
    cheap = " AND ".join(
        [
            "a.id IS NOT NULL",
            "m.id IS NOT NULL",
            "s.day LIKE '____-__-__' AND s.day >= '1900' AND s.day < '3000' AND s.n_day::text = s.day",
            f"s.n_quantity::text = s.quantity AND s.n_quantity >= 0"
            f" AND s.n_quantity < 1e{QUANTITY_MAX_INTEGER_DIGITS}"
            f" AND scale(s.n_quantity) <= {QUANTITY_MAX_DECIMALS}",
            "(s.n_event_count IS NULL OR s.n_event_count >= 0)",
            "s.cursor IS NOT NULL" if with_cursor else "true",
        ]
    )
    guard = f"WHERE CASE WHEN {cheap} THEN true ELSE ('row ' || s.seq || ' needs checking')::boolean END"
    return f"""
        SELECT a.id AS account_id, m.id AS meter_id, s.n_day AS day, s.n_quantity::numeric(28, 6) AS quantity,
               COALESCE(s.n_event_count, 0) AS event_count
        -- Each cast once, in the fenced subquery (a failing cast fails the statement: then the
        -- rules run).
        FROM {rows}
        LEFT JOIN {accounts} a ON a.external_id = s.account
        LEFT JOIN {meters} m ON m.key = s.meter
        {guard if vouched else ""}
    """  # noqa: S608 - only constants and the rules' patterns are interpolated


def _reasons_sql(source: WarehouseSource) -> str:
    """(row, field, reason) of every problem: the CSV import's wording where a rule is shared."""
    with_cursor = bool(source.cursor_column)
    cursor_pattern = ID_CURSOR_PATTERN if source.cursor_kind == CursorKind.ID else TIMESTAMP_CURSOR_PATTERN
    cursor_what = "a whole number" if source.cursor_kind == CursorKind.ID else "a timestamp"
    checks = [
        f"""('{name}', CASE WHEN s.{name} IS NULL OR s.{name} = '' THEN 'is required'
              WHEN length(s.{name}) > {MAX_ID_LENGTH} THEN 'is longer than {MAX_ID_LENGTH} characters'
              WHEN {alias}.id IS NULL THEN format('unknown {name} ''%s''', left(s.{name}, 120)) END)"""
        for name, alias in (("account", "a"), ("meter", "m"))
    ]
    checks.append(
        f"""('day', CASE WHEN s.day IS NULL OR s.day = '' THEN 'is required'
            WHEN s.day !~ '{DAY_PATTERN}'
                THEN format('''%s'' is not a date (YYYY-MM-DD); cast the column to a date', left(s.day, 60))
            WHEN substr(s.day, 9, 2)::int > extract(day from
                 make_date(substr(s.day, 1, 4)::int, substr(s.day, 6, 2)::int, 1) + interval '1 month' - interval '1 day')
                THEN format('''%s'' is not a date that exists', s.day)
            END)"""
    )
    checks.append(
        f"""('quantity', CASE
            WHEN s.quantity IS NULL OR s.quantity = '' THEN 'is required'
            WHEN s.quantity !~ '{QUANTITY_PATTERN}' THEN CASE
                WHEN s.quantity ~ '{QUANTITY_NOT_FINITE_PATTERN}' THEN format('''%s'' is not a finite number', s.quantity)
                ELSE format('''%s'' is not a number', left(s.quantity, 40)) END
            WHEN s.quantity::numeric < 0 THEN format('%s is negative; usage quantities must be zero or more', s.quantity)
            WHEN s.quantity::numeric >= 1e{QUANTITY_MAX_INTEGER_DIGITS} THEN format('%s is too large', s.quantity)
            WHEN s.quantity::numeric <> round(s.quantity::numeric, {QUANTITY_MAX_DECIMALS})
                THEN format('%s has more than {QUANTITY_MAX_DECIMALS} decimal places', s.quantity)
            END)"""
    )
    checks.append(
        """('event_count', CASE WHEN s.event_count IS NULL OR s.event_count = '' THEN NULL
            WHEN s.event_count !~ '^[0-9]{1,18}$'
                THEN format('''%s'' is not a whole number of events (0 or more)', left(s.event_count, 40)) END)"""
    )
    if with_cursor:
        checks.append(
            f"""('cursor', CASE WHEN s.cursor IS NULL OR s.cursor = '' THEN 'is required (the cursor column)'
                WHEN s.cursor !~ '{cursor_pattern}' THEN format('''%s'' is not {cursor_what}', left(s.cursor, 60))
                END)"""
        )
    return f"""
        SELECT s.seq, v.col, v.reason FROM {_trimmed(with_cursor)}
        LEFT JOIN accounts_account a ON a.external_id = s.account
        LEFT JOIN usage_meter m ON m.key = s.meter,
        LATERAL (VALUES {", ".join(checks)}) AS v(col, reason)
        WHERE v.reason IS NOT NULL
        UNION ALL
        SELECT seq, 'day', format('repeats row %s (the same account, meter and day)', first_seq)
        FROM (SELECT seq, min(seq) OVER (PARTITION BY account, meter, day) AS first_seq FROM {_trimmed(False)}) d
        WHERE seq <> first_seq
        ORDER BY 1, 2
    """  # noqa: S608


def _report(source: WarehouseSource, cursor) -> PullReport:
    report = PullReport()
    cursor.execute(_reasons_sql(source))
    for row, name, reason in cursor.fetchall():
        report.add(row, _column_label(source, name), reason)
    return report


def _duplicates_reported(source: WarehouseSource, cursor) -> None:
    report = _report(source, cursor)
    if report.ok:  # the unique index saw something the rules do not: say so rather than hide it
        report.add(0, "", "two rows share an account, meter and day")
    raise PullRejected(report)


def _cursor_after(source: WarehouseSource, cursor) -> str:
    """The largest cursor staged (never before the previous one). A value that is not one
    fails the statement (then the rules say which). Each distinct value is cast once: a
    warehouse stamps many rows alike (the load that wrote them)."""
    if not source.cursor_column:
        return ""
    cursor_type = "numeric" if source.cursor_kind == CursorKind.ID else "timestamptz"
    cursor.execute(
        f"SELECT max(btrim(c)::{cursor_type}) FROM (SELECT DISTINCT cursor AS c FROM _wh_stage) d"  # noqa: S608
    )
    value = cursor.fetchone()[0]
    if value is None:
        return source.last_cursor
    text = value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else str(int(value))
    # Never move the cursor back (a full pull of older rows, a lookback re-read).
    previous = source.last_cursor
    if previous:
        from integrations.warehouse.sources import parse_cursor

        if parse_cursor(source.cursor_kind, text) < parse_cursor(source.cursor_kind, previous):
            return previous
    return text


def _apply(source: WarehouseSource, cursor, *, vouched: bool, first_pull: bool) -> tuple[AggregateResult, str]:
    """Type the staged rows and apply them; DataError when ``vouched`` and a row needs the rules.

    A first pull (nothing stored for the source) reads the typed rows once, from a view, in
    one statement that stores them and writes their deltas: no diff, no copy of 10 M rows
    into another table. Later pulls diff against the stored values, so the typed rows are
    materialized (sorted by the aggregates' key, with statistics) and checked for repeats.
    """
    select = _typed_select(source, vouched=vouched)
    if first_pull:
        cursor.execute(f"CREATE TEMP VIEW _wh_typed AS {select}")
        result = apply_aggregates(source=source.name, rows="_wh_typed")
        cursor.execute("DROP VIEW _wh_typed")
    else:
        # In the order of the aggregates' unique index: its look-ups and inserts go page after
        # page instead of all over an index larger than memory.
        cursor.execute(f"CREATE TEMP TABLE _wh_rows ON COMMIT DROP AS {select} ORDER BY day, account_id, meter_id")
        # A temporary table is never auto-analyzed: without statistics the diff would hash
        # the whole aggregates table for a one-day pull.
        cursor.execute("ANALYZE _wh_rows")
        # The upsert would fail on a repeated key anyway; this says which rows.
        cursor.execute("SELECT 1 FROM _wh_rows GROUP BY account_id, meter_id, day HAVING count(*) > 1 LIMIT 1")
        if cursor.fetchone():
            _duplicates_reported(source, cursor)
        result = apply_aggregates(source=source.name, rows="_wh_rows")
    return result, _cursor_after(source, cursor)


def _pull_aggregates(source: WarehouseSource, *, full: bool, preview: bool) -> PullOutcome:
    started = time.perf_counter()
    cursor = connection.cursor()
    cursor.execute("SET LOCAL jit = off")
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cursor.execute("SET LOCAL datestyle = 'ISO, YMD'")
    csv_import._more_temp_buffers(cursor)
    _, rows = _stage(source, full=full, limit=PREVIEW_ROWS if preview else None)
    outcome = PullOutcome(rows=rows)
    if preview:
        cursor.execute(f"SELECT seq, {', '.join(STAGE_COLUMNS)} FROM _wh_stage ORDER BY seq")  # noqa: S608
        outcome.preview_rows = [
            {
                "row": seq,
                **{name: ("" if value is None else value) for name, value in zip(STAGE_COLUMNS, values, strict=True)},
            }
            for seq, *values in cursor.fetchall()
        ]
        outcome.report = _report(source, cursor)
        outcome.seconds = time.perf_counter() - started
        return outcome
    if rows:
        # Held to the end of the transaction: no other pull of the source stores rows between
        # this look and the apply.
        first_pull = not lock_source(source.name)
        try:
            try:
                with transaction.atomic():
                    result, outcome.cursor_after = _apply(source, cursor, vouched=True, first_pull=first_pull)
            except DataError:
                report = _report(source, cursor)
                if not report.ok:
                    raise PullRejected(report) from None
                with transaction.atomic():
                    result, outcome.cursor_after = _apply(source, cursor, vouched=False, first_pull=first_pull)
        except IntegrityError:
            _duplicates_reported(source, cursor)
        outcome.counts = {"created": result.created, "replaced": result.replaced, "unchanged": result.unchanged}
    else:
        outcome.counts = {"created": 0, "replaced": 0, "unchanged": 0}
        outcome.cursor_after = source.last_cursor
    outcome.seconds = time.perf_counter() - started
    return outcome


# --- Events: through the CSV import ----------------------------------------------------------


EVENT_CSV_COLUMNS = ["id", "account", "meter", "time", "quantity", "properties", "source"]


class _CsvStream:
    """A read-only binary stream over CSV text generated on demand (what the import reads)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._buffer = b""

    def readline(self, size: int = -1) -> bytes:
        while b"\n" not in self._buffer:
            chunk = next(self._lines, b"")
            if not chunk:
                break
            self._buffer += chunk
        cut = self._buffer.find(b"\n") + 1 or len(self._buffer)
        line, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return line

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._lines, b"")
            if not chunk:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def seek(self, *_args) -> int:
        raise io.UnsupportedOperation("a pulled stream cannot be re-read")


@dataclass
class _EventRows:
    cursor_max: object = None
    rows: int = 0


def _event_csv(source: WarehouseSource, batches: Iterator[list[tuple]], seen: _EventRows) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EVENT_CSV_COLUMNS)
    for batch in batches:
        for row in batch:
            *values, cursor_value = row
            seen.rows += 1
            if cursor_value is not None and source.cursor_column:
                comparable = _comparable_cursor(source, cursor_value)
                if comparable is not None and (seen.cursor_max is None or comparable > seen.cursor_max):
                    seen.cursor_max = comparable
            writer.writerow([_event_cell(v) for v in values] + [source.name])
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    yield out.getvalue().encode()


def _event_cell(value: object) -> str:
    if isinstance(value, dt.datetime):
        return _text(value)
    text = _text(value)
    return "" if text is None else text


def _comparable_cursor(source: WarehouseSource, value: object):
    try:
        if source.cursor_kind == CursorKind.ID:
            return int(value)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(str(value))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return None


def _pull_events(source: WarehouseSource, *, full: bool, preview: bool) -> PullOutcome:
    started = time.perf_counter()
    _, engine = engine_for(source)
    select = build_select(
        source, engine, since=cursor_since(source, full=full), limit=PREVIEW_ROWS if preview else None
    )
    with warehouse_connection(engine) as conn:
        if preview:
            return _preview_events(source, fetch_batches(conn, select), started)
        seen = _EventRows()
        stream = _CsvStream(_event_csv(source, fetch_batches(conn, select), seen))
        try:
            result = csv_import.import_usage_stream(stream)
        except ImportRejected as exc:
            report = PullReport()
            if seen.rows == 0:
                return PullOutcome(
                    rows=0, counts={"accepted": 0, "duplicates": 0, "quarantined": 0}, cursor_after=source.last_cursor
                )
            for error in exc.report.errors:
                report.add(max(error["line"] - 1, 0), _column_label(source, error["column"]), error["reason"])
            report.error_count = exc.report.error_count
            raise PullRejected(report) from None
    outcome = PullOutcome(
        rows=result.rows,
        counts={"accepted": result.accepted, "duplicates": result.duplicates, "quarantined": result.quarantined},
        seconds=time.perf_counter() - started,
    )
    outcome.cursor_after = source.last_cursor
    if seen.cursor_max is not None:
        text = (
            str(seen.cursor_max)
            if source.cursor_kind == CursorKind.ID
            else seen.cursor_max.astimezone(dt.UTC).isoformat()
        )
        from integrations.warehouse.sources import parse_cursor

        previous = parse_cursor(source.cursor_kind, source.last_cursor)
        if previous is None or seen.cursor_max > previous:
            outcome.cursor_after = text
    return outcome


def _preview_events(source: WarehouseSource, batches: Iterator[list[tuple]], started: float) -> PullOutcome:
    """The first rows checked by the API's rules (the import applies the same ones in SQL)."""
    outcome = PullOutcome()
    names = EVENT_CSV_COLUMNS[:-1]
    for batch in batches:
        for row in batch:
            outcome.rows += 1
            cells = dict(zip(names, (_event_cell(v) for v in row[:-1]), strict=True))
            outcome.preview_rows.append({"row": outcome.rows, **cells, "cursor": _event_cell(row[-1])})
            try:
                parse_native({**cells, "source": source.name})
            except EventError as exc:
                outcome.report.add(outcome.rows, _column_label(source, exc.field), exc.reason)
    outcome.seconds = time.perf_counter() - started
    return outcome


def pull(source: WarehouseSource, *, full: bool = False, preview: bool = False) -> PullOutcome:
    """Pull (or preview) ``source``. A pull applies everything or raises PullRejected having
    applied nothing; a preview reads the first PREVIEW_ROWS rows and writes nothing."""
    if source.mode == WarehouseMode.EVENTS:
        if preview:
            return _pull_events(source, full=full, preview=True)
        return _pull_events(source, full=full, preview=False)
    if preview:
        # Staging tables only, dropped with the rolled-back transaction.
        with transaction.atomic():
            outcome = _pull_aggregates(source, full=full, preview=True)
            transaction.set_rollback(True)
        return outcome
    with transaction.atomic():
        return _pull_aggregates(source, full=full, preview=False)
