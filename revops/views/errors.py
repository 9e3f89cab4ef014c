"""Answers for requests Django refuses before any view runs."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponseBadRequest


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponseBadRequest:
    """Say what was wrong with the request (Django's own 400 page is an empty "Bad Request").

    The causes a person can meet are a form that is too large or has too many fields or
    files; anything else (a malformed request) gets a general sentence. Nothing was saved.
    """
    if isinstance(exception, TooManyFieldsSent):
        reason = f"The form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields."
    elif isinstance(exception, TooManyFilesSent):
        reason = f"The form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files."
    elif isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
        reason = f"The form's fields add up to more than {limit:,.0f} MB (files do not count); send less text."
    else:
        reason = "The request could not be read."
    return HttpResponseBadRequest(f"{reason} Nothing was saved.", content_type="text/plain; charset=utf-8")
