"""The session store: Django's database sessions, refusing keys PostgreSQL cannot hold."""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DbSessionStore


class SessionStore(DbSessionStore):
    def _validate_session_key(self, key):
        # A cookie with a NUL byte names no session: PostgreSQL refuses NUL in text, and the
        # lookup would be a 500 instead of "not logged in" (found by schemathesis).
        return super()._validate_session_key(key) and "\x00" not in key
