"""Bulk CSV import of usage events: streamed, validated in SQL, all-or-nothing.

The file's bytes go straight to PostgreSQL's COPY (no per-row Python work), into a
temporary staging table of text columns. One SQL pass then checks every row and
column; any problem rolls the whole import back and is reported with its line. A clean
file is stored by the same statement the API uses (``usage.ingest``), so deduplication,
quarantine and rollup deltas behave identically. Memory stays bounded by the chunk size
whatever the file's size. Lines are counted as CSV records (a quoted field spanning
several lines counts once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from revops.tabular import ImportRejected, ImportReport, read_header
from usage.events import DEFAULT_SOURCE, QUANTITY_MAX_DECIMALS
from usage.ingest import STORE_SQL_TEMPLATE, ensure_partitions

REQUIRED = ["id", "account", "meter", "time", "quantity"]
OPTIONAL = ["source", "properties"]
CHUNK_BYTES = 1 << 20

# The SQL form of usage.events' rules, so a CSV row and an API event are judged alike.
_TIME_OK = (
    r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_TIME_NAIVE = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"
_QUANTITY_OK = rf"^\+?\d{{1,22}}(\.\d{{0,{QUANTITY_MAX_DECIMALS}}})?$"


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


def _validation_sql(columns: list[str]) -> str:
    c = {name: _col(columns, name) for name in REQUIRED + OPTIONAL}
    checks = [
        f"""('id', CASE WHEN {c["id"]} IS NULL OR btrim({c["id"]}) = '' THEN 'is required'
                  WHEN length(btrim({c["id"]})) > 200 THEN 'is longer than 200 characters' END)""",
        f"""('account', CASE WHEN {c["account"]} IS NULL OR btrim({c["account"]}) = '' THEN 'is required'
                  WHEN length(btrim({c["account"]})) > 200 THEN 'is longer than 200 characters' END)""",
        f"""('meter', CASE WHEN {c["meter"]} IS NULL OR btrim({c["meter"]}) = '' THEN 'is required'
                  WHEN length(btrim({c["meter"]})) > 200 THEN 'is longer than 200 characters' END)""",
        f"""('time', CASE
            WHEN {c["time"]} IS NULL OR btrim({c["time"]}) = '' THEN 'is required'
            WHEN btrim({c["time"]}) ~ '{_TIME_NAIVE}' THEN format('''%s'' has no time zone; add Z or an offset', btrim({c["time"]}))
            WHEN btrim({c["time"]}) !~ '{_TIME_OK}' THEN format('''%s'' is not an RFC 3339 timestamp', left(btrim({c["time"]}), 60))
            WHEN substr(btrim({c["time"]}), 9, 2)::int > extract(day from
                 make_date(substr(btrim({c["time"]}), 1, 4)::int, substr(btrim({c["time"]}), 6, 2)::int, 1)
                 + interval '1 month' - interval '1 day')
                THEN format('''%s'' is not a date that exists', btrim({c["time"]}))
            END)""",
        f"""('quantity', CASE
            WHEN {c["quantity"]} IS NULL OR btrim({c["quantity"]}) = '' THEN 'is required'
            WHEN btrim({c["quantity"]}) ~ '{_QUANTITY_OK}' THEN NULL
            WHEN btrim({c["quantity"]}) ~ '^-\\s*\\d' THEN format('%s is negative; usage quantities must be zero or more', btrim({c["quantity"]}))
            WHEN btrim({c["quantity"]}) ~* '^[+-]?(nan|inf|infinity)$' THEN format('''%s'' is not a finite number', btrim({c["quantity"]}))
            WHEN btrim({c["quantity"]}) ~ '^\\+?\\d+\\.\\d+$' AND length(split_part(btrim({c["quantity"]}), '.', 2)) > {QUANTITY_MAX_DECIMALS}
                THEN format('%s has more than {QUANTITY_MAX_DECIMALS} decimal places', btrim({c["quantity"]}))
            WHEN btrim({c["quantity"]}) ~ '^\\+?\\d+(\\.\\d*)?$' THEN format('%s is too large', btrim({c["quantity"]}))
            ELSE format('''%s'' is not a number', left(btrim({c["quantity"]}), 40))
            END)""",
    ]
    if c["source"]:
        checks.append(
            f"""('source', CASE WHEN length(btrim({c["source"]})) > 200 THEN 'is longer than 200 characters' END)"""
        )
    if c["properties"]:
        checks.append(
            f"""('properties', CASE WHEN {c["properties"]} IS NULL OR btrim({c["properties"]}) = '' THEN NULL
                  WHEN usage_try_jsonb({c["properties"]}) IS NULL THEN 'is not valid JSON'
                  WHEN jsonb_typeof(usage_try_jsonb({c["properties"]})) <> 'object' THEN 'must be a JSON object'
                  END)"""
        )
    # Only column positions (c0…cN) and constants are interpolated here.
    return f"""
        SELECT s.seq + 1 AS line, v.col, v.reason
        FROM _usage_stage s, LATERAL (VALUES {", ".join(checks)}) AS v(col, reason)
        WHERE v.reason IS NOT NULL
        ORDER BY s.seq
    """  # noqa: S608


def _literal(text: str) -> str:
    from psycopg import sql

    return sql.Literal(text).as_string(connection.connection)


def _events_view_sql(columns: list[str]) -> str:
    """The staging rows typed once (``_usage_rows``), then as events keyed and resolved, one per
    key in key order (``_usage_events``): materialized because the store statement reads
    them twice, and sorted so the key index is filled in order."""
    c = {name: _col(columns, name) for name in REQUIRED + OPTIONAL}
    source = f"COALESCE(NULLIF(btrim({c['source']}), ''), '{DEFAULT_SOURCE}')" if c["source"] else f"'{DEFAULT_SOURCE}'"
    extras = [name for name in columns if name not in REQUIRED + OPTIONAL]
    # Extra columns become properties; an explicit properties JSON wins on a clash.
    props = "'{}'::jsonb"
    if extras:
        # Header names come from the file: quoted as SQL literals, never pasted in.
        pairs = ", ".join(f"{_literal(name)}, NULLIF(btrim(c{columns.index(name)}), '')" for name in extras)
        props = f"jsonb_strip_nulls(jsonb_build_object({pairs}))"
    if c["properties"]:
        props = f"({props} || COALESCE(usage_try_jsonb(NULLIF(btrim({c['properties']}), '')), '{{}}'::jsonb))"
    return f"""
        CREATE TEMP TABLE _usage_rows ON COMMIT DROP AS
        SELECT DISTINCT ON (source, event_id) * FROM (
        SELECT s.seq, {source} AS source, btrim({c["id"]}) AS event_id,
               btrim({c["account"]}) AS account_ref, btrim({c["meter"]}) AS meter_ref,
               btrim({c["time"]})::timestamptz AS occurred_at, btrim({c["quantity"]})::numeric(28, 6) AS quantity,
               {props} AS properties
        FROM _usage_stage s) typed
        -- The first copy of an id in the file counts, whatever its account or meter.
        ORDER BY source, event_id, seq;

        CREATE TEMP TABLE _usage_events ON COMMIT DROP AS
        SELECT md5(r.source || chr(31) || r.event_id)::uuid AS key, r.source, r.event_id,
               a.id AS account_id, m.id AS meter_id, r.occurred_at, r.quantity, r.properties
        FROM _usage_rows r
        JOIN accounts_account a ON a.external_id = r.account_ref
        JOIN usage_meter m ON m.key = r.meter_ref
        ORDER BY key;
    """  # noqa: S608


_QUARANTINE_SQL = """
INSERT INTO usage_quarantinedevent
    (source, event_id, account_ref, meter_ref, occurred_at, quantity, properties, reason, received_at)
SELECT r.source, r.event_id, r.account_ref, r.meter_ref, r.occurred_at,
       r.quantity, r.properties,
       CASE WHEN a.id IS NULL THEN format('unknown account ''%%s''', left(r.account_ref, 120))
            ELSE format('unknown meter ''%%s''', left(r.meter_ref, 120)) END,
       %(received_at)s
FROM _usage_rows r
LEFT JOIN accounts_account a ON a.external_id = r.account_ref
LEFT JOIN usage_meter m ON m.key = r.meter_ref
WHERE a.id IS NULL OR m.id IS NULL
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
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # A previous import in the same outer transaction may have left them.
        cursor.execute("DROP TABLE IF EXISTS _usage_events, _usage_rows, _usage_stage")
        cursor.execute(
            "CREATE TEMP TABLE _usage_stage (seq bigint GENERATED ALWAYS AS IDENTITY, "
            + ", ".join(f"c{i} text" for i in range(len(columns)))
            + ") ON COMMIT DROP"
        )
        done = _copy_file(cursor, stream, staged_columns, progress)
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
        # its transaction rolls back).
        cursor.execute(_validation_sql(columns))
        for line, column, reason in cursor:
            report.add(line, column, reason)
        if not report.ok:
            raise ImportRejected(report)

        cursor.execute(_events_view_sql(columns))
        cursor.execute("SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM _usage_rows")
        ensure_partitions(month for (month,) in cursor.fetchall())
        cursor.execute(STORE_SQL_TEMPLATE.format(source="_usage_events"), {"received_at": received_at})
        accepted = cursor.fetchone()[0]
        cursor.execute(_QUARANTINE_SQL, {"received_at": received_at})
        quarantined = cursor.rowcount
        cursor.execute(
            "UPDATE usage_importedusagefile SET accepted = %s WHERE sha256 = %s", [accepted, stream.digest.hexdigest()]
        )
        if accepted:
            from usage.tasks import schedule_rollup_fold

            transaction.on_commit(schedule_rollup_fold)
        if progress:
            progress(done)
    return UsageImportResult(
        rows=rows, accepted=accepted, quarantined=quarantined, duplicates=rows - accepted - quarantined
    )


def _copy_file(cursor, stream: BinaryIO, staged_columns: str, progress: Callable[[int], None] | None) -> int:
    done = 0
    try:
        with cursor.copy(f"COPY _usage_stage ({staged_columns}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
                copy.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done)
    except psycopg.Error as exc:
        raise ImportRejected(_copy_error_report(exc)) from None
    except Exception as exc:  # Django wraps psycopg errors
        cause = exc.__cause__
        if isinstance(cause, psycopg.Error):
            raise ImportRejected(_copy_error_report(cause)) from None
        raise
    return done


def _copy_error_report(exc: psycopg.Error) -> ImportReport:
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
    elif "invalid byte sequence" in message:
        message = "is not valid UTF-8 text"
    report = ImportReport()
    report.add(line, "", message)
    return report


def import_usage_file(path: str, **kwargs) -> UsageImportResult:
    with open(path, "rb") as stream:
        return import_usage_stream(stream, **kwargs)


def file_size(path: str) -> int:
    return os.path.getsize(path)
