"""What each supported warehouse needs: its SQLAlchemy URL form, driver and session settings.

A source's URL is any SQLAlchemy URL whose backend is listed here and whose dialect and
driver are installed; it is checked when the source is saved, so a pull never fails on a
missing package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from revops.errors import ApplicationError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# SQLAlchemy (~28 MB resident) is imported when a URL is parsed, not when the URL conf loads
# the pages that use this module: web processes and management commands never pay for it.


@dataclass(frozen=True)
class Dialect:
    name: str  # WarehouseDialect value
    label: str
    example: str
    package: str  # what to install when the dialect is missing
    # COPY … TO STDOUT straight into revops' COPY FROM STDIN (PostgreSQL to PostgreSQL).
    copy_out: bool = False


DIALECTS: dict[str, Dialect] = {
    "postgresql": Dialect(
        "postgresql",
        "PostgreSQL",
        "postgresql+psycopg://reader:secret@warehouse.example.com:5432/analytics",
        "psycopg",
        copy_out=True,
    ),
    "snowflake": Dialect(
        "snowflake",
        "Snowflake",
        "snowflake://reader:secret@acme-xy12345/ANALYTICS/USAGE?warehouse=REPORTING",
        "snowflake-sqlalchemy",
    ),
    "bigquery": Dialect(
        "bigquery",
        "BigQuery",
        "bigquery://my-project/usage_dataset?credentials_path=/etc/revops/bq.json",
        "sqlalchemy-bigquery",
    ),
}


def parse_url(text: str) -> tuple[Dialect, URL]:
    """The dialect and the parsed URL, or an ApplicationError naming the ``url`` field.

    ``postgresql://`` means psycopg 3 (the driver revops itself uses)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(text.strip())
    except ArgumentError:
        raise ApplicationError(
            "is not a SQLAlchemy URL (dialect://user:password@host/database)", details={"field": "url"}
        ) from None
    backend = url.get_backend_name()
    dialect = DIALECTS.get(backend)
    if dialect is None:
        raise ApplicationError(
            f"'{backend}' is not a supported warehouse; use one of {', '.join(DIALECTS)}", details={"field": "url"}
        )
    if backend == "postgresql" and url.get_driver_name() in ("psycopg2", "psycopg") and "+" not in url.drivername:
        url = url.set(drivername="postgresql+psycopg")
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ApplicationError(
            f"the {dialect.label} driver is not installed (pip install {dialect.package})", details={"field": "url"}
        ) from None
    return dialect, url


def masked(url: URL) -> str:
    """The URL as pages show it: the password never leaves the encrypted field."""
    return url.render_as_string(hide_password=True)


def connect_args(dialect: Dialect) -> dict:
    """Session settings every pull relies on: PostgreSQL reads in a read-only transaction
    (a query cannot write to the warehouse), with ISO dates and UTC times in COPY's text."""
    if dialect.name == "postgresql":
        return {"options": "-c default_transaction_read_only=on -c datestyle=ISO,YMD -c timezone=UTC"}
    return {}
