"""What the audit trail records for a model: every insert, update **and delete**, with the
acting user and request (``AuditContextMiddleware``), by database trigger, so bulk
``update()``/``delete()`` and raw SQL are recorded too."""

from __future__ import annotations

import pghistory


def audited(**options):
    """``@audited(exclude=[...])``: ``pghistory.track`` with inserts, updates and deletes."""
    return pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), **options)


def acting_as(user_id: int | None, **metadata):
    """Attribute the changes made inside the block to ``user_id`` (work done outside a
    request, e.g. an import job run by a worker for the person who uploaded the file)."""
    return pghistory.context(user=user_id, **metadata)
