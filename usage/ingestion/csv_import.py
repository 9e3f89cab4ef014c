"""Bulk CSV import of usage events: streamed, validated in SQL, all-or-nothing.

The file's bytes go straight to PostgreSQL's COPY (no per-row Python work), into a
temporary staging table of text columns. One SQL pass then types every row that a cheap
predicate vouches for (the usual case: the whole file); only when some row is not vouched
for are the rules of ``usage.ingestion.events`` applied, to those rows, to report every problem with
its line and column. Any problem rolls the whole import back. A clean
file is stored by the same statement the API uses (``usage.ingestion.ingest``), so deduplication,
quarantine and rollup deltas behave identically. Memory stays bounded by the chunk size
whatever the file's size. Lines are counted as CSV records (a quoted field spanning
several lines counts once).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import psycopg
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.utils import timezone

from revops.tabular import ImportRejected, ImportReport, read_header
from usage.enqueue import enqueue_rollup_fold
from usage.ingestion.events import (
    DEFAULT_SOURCE,
    MAX_ID_LENGTH,
    QUANTITY_MAX_DECIMALS,
    QUANTITY_MAX_INTEGER_DIGITS,
    QUANTITY_NOT_FINITE_PATTERN,
    QUANTITY_PATTERN,
    TIME_NAIVE_PATTERN,
    TIME_PATTERN,
)
from usage.ingestion.ingest import ensure_partitions, store_sql

REQUIRED = ["id", "account", "meter", "time", "quantity"]
OPTIONAL = ["source", "properties"]
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class UsageImportResult:
    rows: int
    accepted: int
    duplicates: int
    quarantined: int
    # Set when this exact file was imported before: nothing was added this time.
    already_imported_on: dt.datetime | None = None


class _HashingReader:
    """Reads through to ``stream`` while hashing every byte (the header line included)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.digest.update(data)
        return data

    @property
    def raw(self) -> BinaryIO:
        return self._stream

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self.digest.update(data)
        return data


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _col(columns: list[str], name: str) -> str | None:
    return f"c{columns.index(name)}" if name in columns else None


# usage.ingestion.events.WHITESPACE as an SQL E'' literal: times and quantities are stripped alike.
_WS = r"E' \t\n\r\f\v'"


def _cheap_ok_sql(c: dict[str, str | None]) -> str:
    """A cheap predicate true only for rows that pass every rule of ``usage.ingestion.events``.

    No regular expression: a time or quantity in its canonical form casts and prints back
    to the same text (PostgreSQL's own parser checks the digits, the date, the ranges). Rows
    it does not vouch for (bad rows, and rarer good ones: offsets, "t", ".5", "1e3", "007")
    go to the detailed pass, which applies the rules themselves. A cast that fails (e.g. a
    quantity "12x") fails the statement: then the detailed pass runs over every row.
    """
    checks = [f"{v} <> '' AND length({v}) <= {MAX_ID_LENGTH}" for v in ("v_id", "v_account", "v_meter")]
    checks.append(
        "(left(v_time, 2) = '19' OR left(v_time, 1) = '2') AND ("
        # 2026-11-02T08:15:00Z
        " (v_time LIKE '____-__-__T__:__:__Z' AND n_time::text = left(v_time, 10) || ' ' || substr(v_time, 12, 8))"
        # 2026-11-02T08:15:00.120Z (1 to 6 digits; PostgreSQL prints no trailing zeros, nor ".")
        " OR (v_time LIKE '____-__-__T__:__:__._%Z' AND length(v_time) <= 27 AND n_time::text ="
        "     left(v_time, 10) || ' ' || rtrim(rtrim(substr(v_time, 12, length(v_time) - 12), '0'), '.')))"
    )
    checks.append(
        f"n_quantity::text = v_quantity AND n_quantity >= 0 AND n_quantity < 1e{QUANTITY_MAX_INTEGER_DIGITS}"
        f" AND scale(n_quantity) <= {QUANTITY_MAX_DECIMALS}"
    )
    if c["source"]:
        checks.append(f"v_source IS NULL OR length(v_source) <= {MAX_ID_LENGTH}")
    if c["properties"]:
        checks.append(
            "v_properties IS NULL OR v_properties = '' OR jsonb_typeof(usage_try_jsonb(v_properties)) = 'object'"
        )
    return " AND ".join(f"({check})" for check in checks)


def _staged_sql(c: dict[str, str | None], *, cast: bool, extra_cells: str = "") -> str:
    """The staged rows with their cells trimmed once each (OFFSET 0 keeps PostgreSQL from
    re-computing them per reference) and, with ``cast``, the time (as UTC, valid for the
    "Z" form only) and quantity cast once for the cheap predicate (a failed cast fails the
    statement)."""
    staged = f"(SELECT seq, {_trimmed_sql(c)}{extra_cells} FROM _usage_stage OFFSET 0) s"  # noqa: S608
    if not cast:
        return staged
    return f"(SELECT *, v_time::timestamp AS n_time, v_quantity::numeric AS n_quantity FROM {staged} OFFSET 0) s"  # noqa: S608


def _trimmed_sql(c: dict[str, str | None]) -> str:
    """The cells the rules look at, trimmed once each."""
    columns = [
        f"btrim({c['id']}) AS v_id",
        f"btrim({c['account']}) AS v_account",
        f"btrim({c['meter']}) AS v_meter",
        f"btrim({c['time']}, {_WS}) AS v_time",
        f"btrim({c['quantity']}, {_WS}) AS v_quantity",
    ]
    if c["source"]:
        columns.append(f"btrim({c['source']}) AS v_source")
    if c["properties"]:
        columns.append(f"btrim({c['properties']}) AS v_properties")
    return ", ".join(columns)


def _reasons_sql(c: dict[str, str | None], rows: str, *, cast: bool) -> str:
    """(line, column, reason) for every problem of the staged rows matching ``rows``: the
    rules of ``usage.ingestion.events`` (same patterns, same order, same messages), row by row."""
    checks = [
        f"""('{name}', CASE WHEN v_{name} IS NULL OR v_{name} = '' THEN 'is required'
                  WHEN length(v_{name}) > {MAX_ID_LENGTH} THEN 'is longer than {MAX_ID_LENGTH} characters' END)"""
        for name in ("id", "account", "meter")
    ]
    checks.append(
        f"""('time', CASE
            WHEN v_time IS NULL OR v_time = '' THEN 'is required'
            WHEN v_time !~ '{TIME_PATTERN}' THEN CASE
                WHEN v_time ~ '{TIME_NAIVE_PATTERN}' THEN format('''%s'' has no time zone; add Z or an offset', v_time)
                ELSE format('''%s'' is not an RFC 3339 timestamp', left(v_time, 60)) END
            WHEN substr(v_time, 9, 2)::int > extract(day from
                 make_date(substr(v_time, 1, 4)::int, substr(v_time, 6, 2)::int, 1)
                 + interval '1 month' - interval '1 day')
                THEN format('''%s'' is not a date that exists', v_time)
            END)"""
    )
    # Past the pattern the casts cannot fail (an exponent has at most 4 digits).
    checks.append(
        f"""('quantity', CASE
            WHEN v_quantity IS NULL OR v_quantity = '' THEN 'is required'
            WHEN v_quantity !~ '{QUANTITY_PATTERN}' THEN CASE
                WHEN v_quantity ~ '{QUANTITY_NOT_FINITE_PATTERN}' THEN format('''%s'' is not a finite number', v_quantity)
                ELSE format('''%s'' is not a number', left(v_quantity, 40)) END
            WHEN v_quantity::numeric < 0 THEN format('%s is negative; usage quantities must be zero or more', v_quantity)
            WHEN v_quantity::numeric >= 1e{QUANTITY_MAX_INTEGER_DIGITS} THEN format('%s is too large', v_quantity)
            WHEN v_quantity::numeric <> round(v_quantity::numeric, {QUANTITY_MAX_DECIMALS})
                THEN format('%s has more than {QUANTITY_MAX_DECIMALS} decimal places', v_quantity)
            END)"""
    )
    if c["source"]:
        checks.append(
            f"""('source', CASE WHEN length(v_source) > {MAX_ID_LENGTH}
                  THEN 'is longer than {MAX_ID_LENGTH} characters' END)"""
        )
    if c["properties"]:
        checks.append(
            """('properties', CASE WHEN v_properties IS NULL OR v_properties = '' THEN NULL
                  WHEN usage_try_jsonb(v_properties) IS NULL THEN 'is not valid JSON'
                  WHEN jsonb_typeof(usage_try_jsonb(v_properties)) <> 'object' THEN 'must be a JSON object'
                  END)"""
        )
    # Only column positions (c0…cN), the rules' patterns and constants are interpolated here.
    return f"""
        SELECT s.seq + 1 AS line, v.col, v.reason
        FROM {_staged_sql(c, cast=cast)},
             LATERAL (VALUES {", ".join(checks)}) AS v(col, reason)
        WHERE v.reason IS NOT NULL AND ({rows})
        ORDER BY s.seq
    """  # noqa: S608


def _literal(text: str) -> str:
    from psycopg import sql

    return sql.Literal(text).as_string(connection.connection)


def _rows_sql(columns: list[str], *, vouched_by: str | None = None) -> str:
    """The staged rows typed, keyed and resolved in one pass (``_usage_rows``): one row per
    (source, id), the first in the file, with the account and meter ids (NULL when
    unknown), in (account, time) order. ``_usage_events`` is its resolved part,
    what the store statement reads (twice: hence the table). With ``vouched_by`` (the
    cheap predicate) the statement fails at the first row it does not vouch for; without,
    it runs after the detailed checks found nothing, so every cast succeeds."""
    c = {name: _col(columns, name) for name in REQUIRED + OPTIONAL}
    source = f"COALESCE(NULLIF(v_source, ''), '{DEFAULT_SOURCE}')" if c["source"] else f"'{DEFAULT_SOURCE}'"
    extras = [name for name in columns if name not in REQUIRED + OPTIONAL]
    # Extra columns become properties; an explicit properties JSON wins on a clash.
    props = "'{}'::jsonb"
    if extras:
        # Header names come from the file: quoted as SQL literals, never pasted in.
        pairs = ", ".join(f"{_literal(name)}, NULLIF(btrim(c{columns.index(name)}), '')" for name in extras)
        # Every extra cell filled (the usual case): no NULL to strip.
        filled = " AND ".join(f"btrim(c{columns.index(name)}) <> ''" for name in extras)
        props = f"CASE WHEN {filled} THEN jsonb_build_object({pairs}) ELSE jsonb_strip_nulls(jsonb_build_object({pairs})) END"
    if c["properties"]:
        props = f"({props} || COALESCE(NULLIF(v_properties, '')::jsonb, '{{}}'::jsonb))"
    # A fraction beyond microseconds is truncated (as Python does), never rounded up. Times of
    # at most 27 characters cannot have one.
    occurred_at = (
        "(CASE WHEN length(v_time) <= 27 THEN v_time"
        " ELSE regexp_replace(v_time, '([.][0-9]{6})[0-9]+', '\\1') END)::timestamptz"
    )
    quantity = "v_quantity::numeric(28, 6)"
    if vouched_by:
        # Every row is in the "Z" form: its time was already cast (as UTC), its quantity too.
        occurred_at, quantity = "(n_time AT TIME ZONE 'UTC')", "n_quantity::numeric(28, 6)"
    extra_cells = "".join(f", c{columns.index(name)}" for name in extras)
    # Optimistic single pass: a row the cheap predicate does not vouch for stops the statement
    # (as a failing cast does); the caller then runs the detailed checks and types again.
    guard = (
        f"WHERE CASE WHEN ({vouched_by}) THEN true ELSE ('line ' || seq + 1 || ' needs checking')::boolean END"
        if vouched_by
        else ""
    )
    return f"""
        CREATE TEMP TABLE _usage_rows ON COMMIT DROP AS
        SELECT * FROM (
        SELECT DISTINCT ON (r.key) r.key, r.source, r.event_id, r.account_ref, r.meter_ref,
               a.id AS account_id, m.id AS meter_id, r.occurred_at, r.quantity, r.properties
        FROM (
            SELECT seq, md5({source} || chr(31) || v_id)::uuid AS key, {source} AS source, v_id AS event_id,
                   v_account AS account_ref, v_meter AS meter_ref, {occurred_at} AS occurred_at,
                   {quantity} AS quantity, {props} AS properties
            FROM {_staged_sql(c, cast=bool(vouched_by), extra_cells=extra_cells)}
            {guard}
        ) r
        LEFT JOIN accounts_account a ON a.external_id = r.account_ref
        LEFT JOIN usage_meter m ON m.key = r.meter_ref
        -- The first copy of an id in the file counts, whatever its account or meter.
        ORDER BY r.key, r.seq
        ) deduplicated
        -- Stored in the order of usage_event's (account_id, occurred_at) index: its inserts
        -- then go page after page instead of all over the index.
        ORDER BY account_id, occurred_at;

        CREATE TEMP VIEW _usage_events AS
        SELECT key, source, event_id, account_id, meter_id, occurred_at, quantity, properties
        FROM _usage_rows WHERE account_id IS NOT NULL AND meter_id IS NOT NULL;
    """  # noqa: S608


_QUARANTINE_SQL = """
INSERT INTO usage_quarantinedevent
    (source, event_id, account_ref, meter_ref, occurred_at, quantity, properties, reason, received_at)
SELECT r.source, r.event_id, r.account_ref, r.meter_ref, r.occurred_at,
       r.quantity, r.properties,
       CASE WHEN r.account_id IS NULL THEN format('unknown account ''%%s''', left(r.account_ref, 120))
            ELSE format('unknown meter ''%%s''', left(r.meter_ref, 120)) END,
       %(received_at)s
FROM _usage_rows r
WHERE r.account_id IS NULL OR r.meter_id IS NULL
ON CONFLICT (source, event_id) DO NOTHING
"""


def import_usage_stream(
    stream: BinaryIO,
    *,
    received_at: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> UsageImportResult:
    """Import one CSV of usage events, or raise ``ImportRejected`` having imported nothing."""
    received_at = received_at or timezone.now()
    stream = _HashingReader(stream)
    columns = read_header(stream, required=REQUIRED, optional=OPTIONAL, allow_extra=True)
    staged_columns = ", ".join(f"c{i}" for i in range(len(columns)))
    with transaction.atomic():
        cursor = connection.cursor()
        # Large sorts and hashes; JIT compilation costs seconds and saves nothing here.
        cursor.execute("SET LOCAL jit = off")
        _more_temp_buffers(cursor)
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # Timestamps print back as YYYY-MM-DD HH:MI:SS (the cheap check compares them).
        cursor.execute("SET LOCAL datestyle = 'ISO, YMD'")
        # A previous import in the same outer transaction may have left them.
        cursor.execute("DROP VIEW IF EXISTS _usage_events")
        cursor.execute("DROP TABLE IF EXISTS _usage_rows, _usage_stage")
        cursor.execute(
            "CREATE TEMP TABLE _usage_stage (seq bigint GENERATED ALWAYS AS IDENTITY, "
            + ", ".join(f"c{i} text" for i in range(len(columns)))
            + ") ON COMMIT DROP"
        )
        done = _copy_file(cursor, stream, staged_columns, progress, columns=columns)
        cursor.execute("SELECT count(*) FROM _usage_stage")
        rows = cursor.fetchone()[0]
        report = ImportReport(summary={"rows": rows})
        if rows == 0:
            report.add(2, "", "the file has a header but no rows")
            raise ImportRejected(report)

        # Claim the file's checksum first: an identical file imported before (or right now,
        # by another worker: ON CONFLICT waits for it) adds nothing, even after its events'
        # dedupe keys expired with the retention window.
        cursor.execute(
            "INSERT INTO usage_importedusagefile (sha256, rows, accepted, imported_at) VALUES (%s, %s, 0, %s)"
            " ON CONFLICT (sha256) DO NOTHING",
            [stream.digest.hexdigest(), rows, received_at],
        )
        if cursor.rowcount == 0:
            cursor.execute(
                "SELECT imported_at FROM usage_importedusagefile WHERE sha256 = %s", [stream.digest.hexdigest()]
            )
            return UsageImportResult(
                rows=rows, accepted=0, duplicates=rows, quarantined=0, already_imported_on=cursor.fetchone()[0]
            )

        # Only a file never imported before is validated (a rejected file leaves no checksum:
        # its transaction rolls back). First, optimistically, one pass types every row that a
        # cheap predicate vouches for; it stops at the first row it does not. Only then are the
        # rules themselves applied, to the rows the predicate does not vouch for (to every row
        # if one of them cannot even be cast), and the rows typed again.
        c = {name: _col(columns, name) for name in REQUIRED + OPTIONAL}
        try:
            with transaction.atomic():
                cursor.execute(_rows_sql(columns, vouched_by=_cheap_ok_sql(c)))
        except DataError:
            try:
                with transaction.atomic():
                    _add_problems(cursor, report, _reasons_sql(c, f"({_cheap_ok_sql(c)}) IS NOT TRUE", cast=True))
            except DataError:
                _add_problems(cursor, report, _reasons_sql(c, "true", cast=False))
            if not report.ok:
                raise ImportRejected(report) from None
            try:
                with transaction.atomic():
                    cursor.execute(_rows_sql(columns))
            except DataError:
                # A cast the rules should have ruled out failed: report every row's problems.
                _add_problems(cursor, report, _reasons_sql(c, "true", cast=False))
                if not report.ok:
                    raise ImportRejected(report) from None
                raise
        cursor.execute("SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM _usage_rows")
        ensure_partitions(month for (month,) in cursor.fetchall())
        accepted = _store(cursor, received_at)
        cursor.execute(_QUARANTINE_SQL, {"received_at": received_at})
        quarantined = cursor.rowcount
        cursor.execute(
            "UPDATE usage_importedusagefile SET accepted = %s WHERE sha256 = %s", [accepted, stream.digest.hexdigest()]
        )
        if accepted:
            transaction.on_commit(enqueue_rollup_fold)
        if progress:
            progress(done)
    return UsageImportResult(
        rows=rows, accepted=accepted, quarantined=quarantined, duplicates=rows - accepted - quarantined
    )


def _store(cursor, received_at: dt.datetime) -> int:
    """Store the resolved rows; the number of new events.

    A backfill file usually holds only new events: when a sample of its keys finds none
    stored, the all-new form of the store statement runs first (see ``usage.ingestion.ingest.store_sql``);
    should a key turn out to be stored (or be stored meanwhile by the API), that attempt is
    rolled back and the general form decides event by event.
    """
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM (SELECT key FROM _usage_rows TABLESAMPLE SYSTEM (1) LIMIT 2000) sample"
        " JOIN usage_eventkey USING (key))"
    )
    if not cursor.fetchone()[0]:
        try:
            with transaction.atomic():
                cursor.execute(store_sql("_usage_events", all_new=True), {"received_at": received_at})
                return cursor.fetchone()[0]
        except IntegrityError as exc:
            cause = exc.__cause__
            if not isinstance(cause, psycopg.errors.UniqueViolation) or cause.diag.constraint_name != (
                "usage_eventkey_pkey"
            ):
                raise
    # A hash join keeps _usage_rows' order into usage_event (a merge join would re-sort by key).
    cursor.execute("SET LOCAL enable_mergejoin = off")
    cursor.execute(store_sql("_usage_events"), {"received_at": received_at})
    accepted = cursor.fetchone()[0]
    cursor.execute("RESET enable_mergejoin")
    return accepted


TEMP_BUFFERS = "512MB"


def _more_temp_buffers(cursor) -> None:
    """Temporary tables live in session-local buffers (8 MB by default), so every scan of a
    large staging table would go back to the kernel. Only a session that has not used a
    temporary table yet may raise the limit; otherwise the import just runs without it."""
    try:
        with transaction.atomic():
            cursor.execute(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'")
    except DatabaseError:
        pass


def _add_problems(cursor, report: ImportReport, sql: str) -> None:
    cursor.execute(sql)
    for line, column, reason in cursor:
        report.add(line, column, reason)


def _copy_file(
    cursor, stream: _HashingReader, staged_columns: str, progress: Callable[[int], None] | None, *, columns: list[str]
) -> int:
    done = 0
    try:
        with cursor.copy(f"COPY _usage_stage ({staged_columns}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
                copy.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done)
    except Exception as exc:
        cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__  # Django wraps psycopg errors
        if isinstance(cause, psycopg.Error):
            raise ImportRejected(_copy_error_report(cause, stream.raw, columns)) from None
        raise
    return done


def _nul_column(raw: BinaryIO, line: int, columns: list[str]) -> str:
    """The column of the first NUL on ``line`` of the file, re-read from the start (an error
    path only; COPY names the line but not the field)."""
    try:
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    except (OSError, ValueError):
        return ""
    try:
        reader = csv.reader(text)
        for values in reader:
            if reader.line_num >= line:
                return next((columns[i] for i, v in enumerate(values) if "\x00" in v and i < len(columns)), "")
    except csv.Error:
        pass
    finally:
        text.detach()  # leave the caller's file open
    return ""


def _copy_error_report(
    exc: psycopg.Error, raw: BinaryIO | None = None, columns: list[str] | None = None
) -> ImportReport:
    """Turn COPY's complaint (wrong field count, bad UTF-8, …) into a line-numbered report."""
    import re

    diag = exc.diag
    context = diag.context or ""
    match = re.search(r"line (\d+)", context)
    line = int(match.group(1)) + 1 if match else 0  # COPY counts from the first data line
    message = (diag.message_primary or str(exc)).replace("_usage_stage", "file")
    if "extra data after last expected column" in message:
        message = "has more fields than the header"
    elif "missing data for column" in message:
        message = "has fewer fields than the header"
    elif "invalid byte sequence" in message and "0x00" in message:
        message = "contains a NUL character (byte 0), which text cannot hold"
    elif "invalid byte sequence" in message:
        message = "is not valid UTF-8 text"
    column = ""
    if message.startswith("contains a NUL") and raw is not None and columns:
        column = _nul_column(raw, line, columns)
    report = ImportReport()
    report.add(line, column, message)
    return report


def import_usage_file(path: str, **kwargs) -> UsageImportResult:
    with open(path, "rb") as stream:
        return import_usage_stream(stream, **kwargs)


def file_size(path: str) -> int:
    return os.path.getsize(path)
