"""Saved views: any list's filters and sort, kept per person under a name.

Every list keeps its state in the URL (filters, sort; the page number too), so a view is
that query string. A list shows its saved views with ``{% saved_views "book" %}``; saving
reads the query string of the page the form was sent from (the browser's address, which
htmx keeps current with ``hx-push-url``), without its page number.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from django.db import IntegrityError, transaction
from django.urls import reverse

from revops.errors import ApplicationError
from revops.models import SavedView

# The lists that can be saved: key → URL name. Apps' lists, named (never imported).
LISTS: dict[str, str] = {
    "book": "usage:book",
    "alerts": "usage:alerts",
    "opportunities": "usage:opportunities",
    "people": "people",
}
MAX_VIEWS_PER_LIST = 20
DROPPED_PARAMS = frozenset({"page"})


def list_url(list_key: str) -> str:
    return reverse(LISTS[list_key])


def clean_query(query: str) -> str:
    """The query string without its page number (a view opens on its first page)."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in DROPPED_PARAMS]
    return urlencode(pairs)[:2000]


def query_from_referer(referer: str, *, list_key: str, host: str) -> str | None:
    """The list's query from the page the form was posted from, when that page is the list."""
    parts = urlsplit(referer or "")
    if parts.netloc and parts.netloc != host:
        return None
    if parts.path != list_url(list_key):
        return None
    return parts.query


def saved_view_create(*, user, list_key: str, name: str, query: str) -> SavedView:
    if list_key not in LISTS:
        raise ApplicationError(f"'{list_key[:40]}' is not a list that can be saved.")
    name = " ".join(name.split())
    if not name:
        raise ApplicationError("Give the view a name.", details={"field": "name"})
    if len(name) > 80:
        raise ApplicationError("A view's name is at most 80 characters.", details={"field": "name"})
    if SavedView.objects.filter(user=user, list_key=list_key).count() >= MAX_VIEWS_PER_LIST:
        raise ApplicationError(f"At most {MAX_VIEWS_PER_LIST} saved views per list; delete one first.")
    try:
        with transaction.atomic():
            return SavedView.objects.create(user=user, list_key=list_key, name=name, query=clean_query(query))
    except IntegrityError:
        raise ApplicationError(f"You already have a view named “{name}” here.", details={"field": "name"}) from None


def saved_views_for(user, list_key: str) -> list[SavedView]:
    return list(SavedView.objects.filter(user=user, list_key=list_key).order_by("name"))
