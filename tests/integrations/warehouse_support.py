"""Fixtures of the warehouse tests: a real second PostgreSQL database acting as the warehouse,
and a fakesnow server the real Snowflake connector talks to over HTTP.

Imported by the test modules that use them (tests/integrations/conftest.py is shared).
"""

from __future__ import annotations

import contextlib
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from integrations.models import WarehouseMode
from integrations.warehouse.services import warehouse_source_save


def _server_kwargs() -> dict:
    s = connection.settings_dict
    return {"host": s["HOST"] or "127.0.0.1", "port": s["PORT"] or 5432, "user": s["USER"], "password": s["PASSWORD"]}


@pytest.fixture(scope="session")
def warehouse_dsn(django_db_setup, django_db_blocker) -> str:
    """``<test db>_warehouse`` on the same server, created for the session and dropped after."""
    with django_db_blocker.unblock():
        name = f"{connection.settings_dict['NAME']}_warehouse"
    kw = _server_kwargs()
    admin = psycopg.connect(dbname="postgres", autocommit=True, **{k: v for k, v in kw.items() if v})
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    password = f":{quote(kw['password'])}" if kw["password"] else ""
    yield f"postgresql+psycopg://{quote(kw['user'])}{password}@{kw['host']}:{kw['port']}/{name}"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


class Warehouse:
    """The warehouse database, for the tests to write their source tables."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = psycopg.connect(dsn.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def execute(self, statement: str, params=None) -> None:
        self.conn.execute(statement, params)

    def rows(self, table: str, rows: list[tuple]) -> None:
        with self.conn.cursor() as cursor:
            placeholders = ", ".join(["%s"] * len(rows[0]))
            cursor.executemany(f"INSERT INTO {table} VALUES ({placeholders})", rows)  # noqa: S608


@pytest.fixture
def warehouse(warehouse_dsn):
    """A fresh ``public`` schema in the warehouse database for each test."""
    wh = Warehouse(warehouse_dsn)
    wh.execute("DROP SCHEMA IF EXISTS public CASCADE")
    wh.execute("CREATE SCHEMA public")
    wh.execute(
        "CREATE TABLE daily_usage (customer text, metric text, usage_day date, total numeric, events bigint,"
        " updated_at timestamptz)"
    )
    wh.execute(
        "CREATE TABLE usage_events (event_id text, customer text, metric text, happened_at timestamptz,"
        " amount numeric, seq bigint)"
    )
    yield wh
    with contextlib.suppress(psycopg.Error):
        wh.conn.close()


AGGREGATE_MAPPING = {
    "account": "customer",
    "meter": "metric",
    "day": "usage_day",
    "quantity": "total",
    "event_count": "events",
}
EVENT_MAPPING = {
    "id": "event_id",
    "account": "customer",
    "meter": "metric",
    "time": "happened_at",
    "quantity": "amount",
}


def make_source(url: str, *, mode: str = WarehouseMode.AGGREGATES, **overrides):
    values = {
        "name": "warehouse",
        "url": url,
        "mode": mode,
        "query": "",
        "table": "daily_usage" if mode == WarehouseMode.AGGREGATES else "usage_events",
        "mapping": AGGREGATE_MAPPING if mode == WarehouseMode.AGGREGATES else EVENT_MAPPING,
        "cursor_column": "updated_at" if mode == WarehouseMode.AGGREGATES else "seq",
        "cursor_kind": "timestamp" if mode == WarehouseMode.AGGREGATES else "id",
        "lookback": 2 * 86400 if mode == WarehouseMode.AGGREGATES else 0,
        "schedule_minutes": 60,
    }
    values.update(overrides)
    return warehouse_source_save(**values)
