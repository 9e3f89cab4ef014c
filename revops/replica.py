"""Page reads from a streaming replica, with read-your-writes (on when ``DATABASE_REPLICA_URL`` is set).

The rule is small on purpose:

- Only a page (a GET or HEAD request served by ``ReplicaMiddleware``) may read from
  ``"replica"``, and only when the replica is up and less than ``REPLICA_MAX_LAG_S``
  behind. Writes, POSTs, Celery tasks, management commands and migrations always use
  ``"default"``; so do the API and SCIM, whose clients keep no cookie to carry the pin
  below (an IdP that creates a user and reads it back must find it).
- After a request that may have written (any unsafe method, or a GET that wrote through
  the ORM), the primary's WAL position is kept in a signed cookie. A later GET whose
  replica has not replayed that far yet is served wholly from the primary; once it has,
  the cookie is dropped. So whoever just saved something sees it on the next page.
- Sessions are always read from the primary: a GET may change the session (a flash
  message shown and consumed) after this middleware is done, where no cookie can follow.
- Every failure to ask the replica means "use the primary", never an error page.

Who you are and what you may do (the user row, its role) is read from the replica on
GETs too, so a role change reaches GET pages within the lag limit; every POST checks it
on the primary.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections

log = logging.getLogger(__name__)

REPLICA = "replica"
PRIMARY = "default"
COOKIE = "revops_read_after"  # the primary's WAL position after this browser's last write
COOKIE_SALT = "revops.replica"
SAFE_METHODS = frozenset({"GET", "HEAD"})
PRIMARY_ONLY_PREFIXES = ("/api/", "/scim/")
# After the replica failed to answer, this process leaves it alone for this many seconds,
# so a dead replica costs one failed connection every few seconds, not one per page.
RETRY_AFTER_S = 5.0
_LSN = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")


@dataclass
class _Routing:
    """What the request being served may do; None outside requests (tasks, commands)."""

    read_from_replica: bool = False
    wrote: bool = False


_routing: ContextVar[_Routing | None] = ContextVar("revops_replica_routing", default=None)
_replica_failed_at: float | None = None


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        routing = _routing.get()
        if routing is None or not routing.read_from_replica or model._meta.label == "sessions.Session":
            return PRIMARY
        # Inside a transaction on the primary, reads must see that transaction's writes.
        if connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return REPLICA

    def db_for_write(self, model, **hints) -> str:
        routing = _routing.get()
        if routing is not None:
            routing.wrote = True  # a GET that writes pins its browser like a POST
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, two copies

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == PRIMARY


class ReplicaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(PRIMARY_ONLY_PREFIXES):
            return self.get_response(request)
        safe = request.method in SAFE_METHODS
        after = _cookie_lsn(request) if safe else None
        routing = _Routing(read_from_replica=safe and _replica_is_fresh(after))
        token = _routing.set(routing)
        try:
            response = self.get_response(request)
        finally:
            _routing.reset(token)
        if not safe or routing.wrote:
            lsn = _primary_lsn()
            if lsn is not None:
                response.set_signed_cookie(
                    COOKIE,
                    lsn,
                    salt=COOKIE_SALT,
                    # A replica that is still behind a write this old lags past the limit,
                    # and then every GET uses the primary anyway: the cookie can expire.
                    max_age=int(settings.REPLICA_MAX_LAG_S) + 1,
                    secure=settings.SESSION_COOKIE_SECURE,
                    httponly=True,
                    samesite="Lax",
                )
        elif after is not None and routing.read_from_replica:
            response.delete_cookie(COOKIE, samesite="Lax")  # the replica has caught up
        return response


def replica_status() -> tuple[int, float] | None:
    """(replayed WAL position, seconds behind) of the replica; None when it cannot tell.

    Behind is 0 when everything received is replayed, else the age of the last replayed
    commit (an overestimate after the primary was idle: on the safe side).
    """
    global _replica_failed_at
    if _replica_failed_at is not None and time.monotonic() - _replica_failed_at < RETRY_AFTER_S:
        return None
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(
                "SELECT pg_last_wal_replay_lsn()::text, CASE"
                " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END"
            )
            replayed, behind = cursor.fetchone()
    except DatabaseError as exc:
        _replica_failed_at = time.monotonic()
        log.warning("Read replica unavailable, pages read from the primary: %s", type(exc).__name__)
        with contextlib.suppress(DatabaseError):
            connections[REPLICA].close()
        return None
    _replica_failed_at = None
    if replayed is None or behind is None:
        return None  # not a standby, or it has replayed nothing yet
    return _lsn_int(replayed), float(behind)


def _replica_is_fresh(after: str | None) -> bool:
    status = replica_status()
    if status is None:
        return False
    replayed, behind = status
    if behind > settings.REPLICA_MAX_LAG_S:
        return False
    return after is None or replayed >= _lsn_int(after)


def _cookie_lsn(request) -> str | None:
    value = request.get_signed_cookie(COOKIE, default=None, salt=COOKIE_SALT)
    return value if value and _LSN.match(value) else None


def _primary_lsn() -> str | None:
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]
    except DatabaseError:
        return None  # the primary is away: this request has failed already


def _lsn_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)
