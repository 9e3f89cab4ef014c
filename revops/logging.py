"""Logging helpers referenced from settings.LOGGING (this module must not import Django models)."""

from __future__ import annotations

import logging


class ClientErrorsOnOneLine(logging.Filter):
    """A 403 or 404 is the client's business, not a bug: log the line, not a traceback.

    Django logs every 4xx on ``django.request`` with the exception attached (PermissionDenied,
    Http404), which the console handler prints as a traceback. Server errors keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
