"""The BI tables: each table's one definition (columns, types, which day a row belongs to,
its fingerprint), read by the file writers (exports.services) and the read API (exports.api).

Rows come out as tuples in column order, streamed from a server-side cursor in chunks so a
day of 120k rollups never sits in memory at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.access import ALL_ACCOUNTS_ROLES, accounts_visible_to
from comp.models import LedgerLine
from revops.access import people_in_scope, sees_company
from revops.clock import today_utc
from usage.access import alerts_visible_to
from usage.models import AccountMetrics, Alert, DailyRollup

CHUNK_ROWS = 10_000
# Rows written by the app's own clock (alerts.updated_at, ledger lines' created_at) are
# stamped before their transaction commits; the API serves them only once they are this old,
# so a page never passes a row whose transaction was still open (see docs/exports.md).
DEFAULT_SETTLE_SECONDS = 60


def settle_seconds() -> int:
    return int(getattr(settings, "EXPORTS_API_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS))


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string, date, timestamp, int, bool, decimal, json
    source: str  # the ORM path read for it
    description: str
    precision: int = 0
    scale: int = 0
    nullable: bool = True

    @property
    def type_text(self) -> str:
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return {
            "timestamp": "timestamp (UTC, µs)",
            "int": "int64",
            "json": "string (JSON)",
        }.get(self.kind, self.kind)


def _model_decimal(model, name: str, description: str, *, label: str | None = None) -> Column:
    """A decimal column with the model field's own precision and scale."""
    f = model._meta.get_field(name)
    return Column(label or name, "decimal", name, description, f.max_digits, f.decimal_places, f.null)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    model: type
    columns: tuple[Column, ...]
    day_rule: str  # which day a row belongs to, in words (docs and the page)
    day_lookup: str  # the field deciding the day
    day_is_timestamp: bool
    keyset: tuple[str, ...]  # the API cursor's order: unique and only growing for new rows
    settle: str = ""  # a timestamp field whose rows the API serves only once settled
    fingerprint_sql: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def day_filter(self, first: dt.date, last: dt.date) -> Q:
        if not self.day_is_timestamp:
            return Q(**{f"{self.day_lookup}__gte": first, f"{self.day_lookup}__lte": last})
        start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return Q(**{f"{self.day_lookup}__gte": start, f"{self.day_lookup}__lt": end})


_MONEY = "Money in the account's contract currency"
_RATIO = "A fraction (0.3042 = 30.42%)"
_INCL = "; includes divisions (the account and every division below it)"

ACCOUNT_METRICS = Table(
    name="account_metrics",
    title="Daily account metrics",
    model=AccountMetrics,
    day_rule="as_of: the day the metrics are as of (the nightly refresh of yesterday, UTC).",
    day_lookup="as_of",
    day_is_timestamp=False,
    keyset=("id",),
    columns=(
        Column("account", "string", "account__external_id", "The account's external id (the CRM's).", nullable=False),
        Column("as_of", "date", "as_of", "The day the metrics are as of (UTC).", nullable=False),
        _model_decimal(AccountMetrics, "run_rate", f"Trailing-30-day revenue × 365 ÷ 30. {_MONEY}{_INCL}."),
        _model_decimal(AccountMetrics, "committed_arr", f"Annualized commitment in force. {_MONEY}{_INCL}."),
        _model_decimal(AccountMetrics, "burn_rate", f"run_rate ÷ committed_arr. {_RATIO}; null without commit{_INCL}."),
        Column("band", "string", "band", "expand, adopt, escalate or none (no commitment in force).", nullable=False),
        _model_decimal(AccountMetrics, "commit_pacing", f"Consumed in term ÷ commitment pro-rated to date. {_RATIO}."),
        _model_decimal(
            AccountMetrics, "projected_burn_at_term_end", f"Consumption projected to the term's end ÷ commit. {_RATIO}."
        ),
        _model_decimal(AccountMetrics, "consumption_rate", f"Consumed in term ÷ total commitment. {_RATIO}."),
        _model_decimal(AccountMetrics, "credit_balance", f"Prepaid credits left. {_MONEY}; null without credits."),
        Column("credits_run_out_on", "date", "credits_run_out_on", "The day credits run out at the current run rate."),
        Column("ttfbe_days", "int", "ttfbe_days", "Days from contract start to the first billable event."),
        _model_decimal(AccountMetrics, "mom_growth", f"Trailing 30 days ÷ the 30 before − 1. {_RATIO}."),
        _model_decimal(AccountMetrics, "expansion_velocity", f"Monthly compounded growth since land. {_RATIO}."),
        _model_decimal(AccountMetrics, "net_new_arr", f"Annualized revenue change over 90 days. {_MONEY}{_INCL}."),
        _model_decimal(AccountMetrics, "revenue_30d", f"Revenue in the trailing 30 days. {_MONEY}{_INCL}."),
        _model_decimal(AccountMetrics, "consumed_in_term", f"Revenue since the commitment began. {_MONEY}{_INCL}."),
        Column("last_usage_on", "date", "last_usage_on", "The last day with billable usage."),
        Column("meters_active", "int", "meters_active", "Meters used in the trailing 30 days.", nullable=False),
        Column("workloads", "int", "workloads", "Distinct workloads seen in the trailing 30 days.", nullable=False),
        _model_decimal(AccountMetrics, "feature_adoption", f"Features used ÷ features offered. {_RATIO}."),
        Column("health_score", "int", "health_score", "0–100 (docs/metrics.md#health_score).", nullable=False),
        Column(
            "next_gate",
            "string",
            "next_gate",
            "The next comp gate (checkpoint_90, clawback_12m) or empty.",
            nullable=False,
        ),
        Column("next_gate_on", "date", "next_gate_on", "The day of that gate."),
        Column("computed_at", "timestamp", "computed_at", "When the refresh computed the row.", nullable=False),
    ),
    fingerprint_sql="""
        SELECT as_of, count(*)::text || '/' || max(id)::text || '/' || max(computed_at)::text
        FROM usage_accountmetrics WHERE as_of BETWEEN %s AND %s GROUP BY as_of""",
)

ROLLUPS = Table(
    name="rollups",
    title="Daily usage rollups",
    model=DailyRollup,
    day_rule="day: the UTC day the usage happened.",
    day_lookup="day",
    day_is_timestamp=False,
    keyset=("day", "id"),
    columns=(
        Column(
            "account",
            "string",
            "account__external_id",
            "The account's external id (its own usage only).",
            nullable=False,
        ),
        Column("meter", "string", "meter__key", "The meter's key.", nullable=False),
        Column("day", "date", "day", "The UTC day.", nullable=False),
        _model_decimal(DailyRollup, "quantity", "Units of the meter used that day (exact, 6 places)."),
        _model_decimal(DailyRollup, "revenue", f"Priced revenue of that day (6 places; {_MONEY.lower()})."),
        Column("event_count", "int", "event_count", "Events folded into the row.", nullable=False),
    ),
    # No change marker on this hot table: a day's content hash (order-free) finds changed days.
    fingerprint_sql="""
        SELECT day, count(*)::text || '/' || sum(quantity)::text || '/' || sum(revenue)::text || '/'
               || sum(event_count)::text || '/'
               || sum(hashtext(account_id::text || ':' || meter_id::text || ':' || quantity::text || ':'
                               || revenue::text || ':' || event_count::text)::bigint)::text
        FROM usage_dailyrollup WHERE day BETWEEN %s AND %s GROUP BY day""",
)

ALERTS = Table(
    name="alerts",
    title="Alerts",
    model=Alert,
    day_rule="the UTC day the alert last changed (updated_at): a partition holds the alerts whose latest change "
    "was that day, so an alert that changes again moves to the newer day's partition.",
    day_lookup="updated_at",
    day_is_timestamp=True,
    keyset=("updated_at", "id"),
    settle="updated_at",
    columns=(
        Column("id", "int", "id", "The alert's id (stable).", nullable=False),
        Column("account", "string", "account__external_id", "The account's external id.", nullable=False),
        Column("kind", "string", "kind", "below_floor, clawback_risk, sudden_decline, plateau, …", nullable=False),
        Column("severity", "int", "severity", "4 critical, 3 high, 2 medium, 1 low.", nullable=False),
        Column(
            "state", "string", "state", "open, acknowledged, snoozed, resolved, dismissed or cleared.", nullable=False
        ),
        Column(
            "condition_active",
            "bool",
            "condition_active",
            "The last refresh still found the condition.",
            nullable=False,
        ),
        _model_decimal(Alert, "revenue_at_risk", f"Annualized revenue at risk. {_MONEY}."),
        Column("gate", "string", "gate", "The comp gate it threatens, or empty.", nullable=False),
        Column("gate_on", "date", "gate_on", "The gate's day."),
        Column("owner", "string", "owner__email", "The owner's email (the account's CSM)."),
        Column("escalated_to", "string", "escalated_to__email", "Email of the land AE it was escalated to."),
        Column("opened_on", "date", "opened_on", "The metrics day the condition was first found.", nullable=False),
        Column("last_seen_on", "date", "last_seen_on", "The last metrics day the condition was found.", nullable=False),
        Column("cleared_on", "date", "cleared_on", "The metrics day the condition ended."),
        Column("snoozed_until", "date", "snoozed_until", "Snoozed up to this day."),
        Column("opened_at", "timestamp", "opened_at", "When the alert was opened.", nullable=False),
        Column("updated_at", "timestamp", "updated_at", "When it last changed (the partition's day).", nullable=False),
    ),
    fingerprint_sql="""
        SELECT (updated_at AT TIME ZONE 'UTC')::date AS d,
               count(*)::text || '/' || sum(id)::text || '/' || max(updated_at)::text
        FROM usage_alert
        WHERE updated_at >= (%s::date)::timestamp AT TIME ZONE 'UTC'
          AND updated_at < ((%s::date) + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY d""",
)

LEDGER_LINES = Table(
    name="ledger_lines",
    title="Comp ledger lines",
    model=LedgerLine,
    day_rule="the UTC day the line was written (created_at). Lines are never changed, so a past day's "
    "partition never changes; use the period column for the month a line counts in.",
    day_lookup="created_at",
    day_is_timestamp=True,
    keyset=("id",),
    settle="created_at",
    columns=(
        Column("id", "int", "id", "The line's id (grows with every line written).", nullable=False),
        Column("person", "string", "person__email", "The payee's email.", nullable=False),
        Column("period", "date", "period", "First day of the month the line counts in.", nullable=False),
        Column("account", "string", "account__external_id", "The account's external id, or null."),
        Column(
            "kind", "string", "kind", "commission, accelerator, spiff, bonus, draw, hold, release, …", nullable=False
        ),
        Column("key", "string", "key", "What the amount is for (a deal's share, a gate's hold …).", nullable=False),
        _model_decimal(LedgerLine, "amount", "Money in the contract currency, 2 places; negative takes money back."),
        Column("plan_version", "int", "plan_version_id", "The plan version's id, or null."),
        Column("comp_run", "int", "run_id", "The comp run that wrote it, or null (a manual line)."),
        Column("explanation", "string", "explanation", "The line in words.", nullable=False),
        Column(
            "inputs", "json", "inputs", "What produced the amount, as JSON text; always has formula.", nullable=False
        ),
        Column(
            "created_at", "timestamp", "created_at", "When the line was written (the partition's day).", nullable=False
        ),
    ),
    fingerprint_sql="""
        SELECT (created_at AT TIME ZONE 'UTC')::date AS d, count(*)::text || '/' || max(id)::text
        FROM comp_ledgerline
        WHERE created_at >= (%s::date)::timestamp AT TIME ZONE 'UTC'
          AND created_at < ((%s::date) + 1)::timestamp AT TIME ZONE 'UTC'
        GROUP BY d""",
)

TABLES: dict[str, Table] = {t.name: t for t in (ACCOUNT_METRICS, ROLLUPS, ALERTS, LEDGER_LINES)}
TABLE_CHOICES = [(t.name, t.title) for t in TABLES.values()]


def table_get(name: str) -> Table | None:
    return TABLES.get(name)


# --- Rows -----------------------------------------------------------------------------------


def _sources(table: Table) -> list[str]:
    return [c.source for c in table.columns]


def table_day_rows(*, table: Table, day: dt.date, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[tuple]]:
    """One partition's rows in chunks of at most ``chunk_rows`` tuples (column order), read
    through a server-side cursor."""
    qs = table.model.objects.filter(table.day_filter(day, day)).order_by(*table.keyset)
    chunk: list[tuple] = []
    for row in qs.values_list(*_sources(table)).iterator(chunk_size=chunk_rows):
        chunk.append(row)
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def table_fingerprints(*, table: Table, first: dt.date, last: dt.date) -> dict[dt.date, str]:
    """{day: fingerprint} for the days from ``first`` to ``last`` that have rows; a day
    without rows has none (its fingerprint is "empty")."""
    with connection.cursor() as cursor:
        cursor.execute(table.fingerprint_sql, [first, last])
        return dict(cursor.fetchall())


EMPTY_FINGERPRINT = "empty"


def _scope(table: Table, person) -> Q:
    """What ``person`` may read of ``table``, by the pages' rules."""
    on = today_utc()
    if table is LEDGER_LINES:
        return Q() if sees_company(person) else Q(person__in=people_in_scope(person))
    if table is ALERTS:
        return Q() if sees_company(person) else Q(pk__in=alerts_visible_to(person, on=on).values("pk"))
    if person.role in ALL_ACCOUNTS_ROLES:
        return Q()
    return Q(account__in=accounts_visible_to(person, on=on))


def _after(table: Table, key: list) -> Q:
    """Rows strictly after ``key`` in the keyset order."""
    if len(table.keyset) == 1:
        return Q(**{f"{table.keyset[0]}__gt": key[0]})
    first, second = table.keyset
    return Q(**{f"{first}__gt": key[0]}) | Q(**{first: key[0], f"{second}__gt": key[1]})


@dataclass
class Page:
    rows: list[tuple]
    last_key: list | None
    has_more: bool


def table_page(
    *, table: Table, person, after: list | None, limit: int, since: dt.date | None, until: dt.date | None
) -> Page:
    """Up to ``limit`` rows ``person`` may read, after the keyset position ``after``."""
    qs: QuerySet = table.model.objects.filter(_scope(table, person))
    if since or until:
        qs = qs.filter(table.day_filter(since or dt.date(1970, 1, 1), until or dt.date(9999, 12, 30)))
    if table.settle:
        horizon = timezone.now() - dt.timedelta(seconds=settle_seconds())
        qs = qs.filter(**{f"{table.settle}__lt": horizon})
    if after is not None:
        qs = qs.filter(_after(table, after))
    qs = qs.order_by(*table.keyset)
    rows = list(qs.values_list(*table.keyset, *_sources(table))[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    n = len(table.keyset)
    last_key = list(rows[-1][:n]) if rows else after
    return Page(rows=[row[n:] for row in rows], last_key=last_key, has_more=has_more)


# --- Values ---------------------------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def text_value(column: Column, value) -> str | int | bool | None:
    """A value as the CSV file and the API's JSON write it: decimals as plain decimal
    strings, dates ISO, timestamps ISO 8601 in UTC with Z, JSON as compact text."""
    if value is None:
        return None
    if column.kind == "decimal":
        return format(Decimal(value).quantize(Decimal(1).scaleb(-column.scale)), "f")
    if column.kind == "timestamp":
        return _utc(value).isoformat().replace("+00:00", "Z")
    if column.kind == "date":
        return value.isoformat()
    if column.kind == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return value


def row_json(table: Table, row: tuple) -> dict:
    return {c.name: text_value(c, v) for c, v in zip(table.columns, row, strict=True)}
