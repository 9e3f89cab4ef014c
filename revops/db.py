"""A second, autocommit connection to Django's database, for work that must not wait for
(or be hidden by) the current transaction: partition creation, job progress."""

from __future__ import annotations

import psycopg
from django.db import connection


def side_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    # Django-only keys that psycopg.connect does not take.
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)
