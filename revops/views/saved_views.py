"""Saving and deleting a list's view (``revops.saved_views``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from revops import saved_views
from revops.errors import ApplicationError
from revops.models import SavedView


@require_POST
def saved_view_save(request: HttpRequest) -> HttpResponse:
    list_key = request.POST.get("list", "")
    if list_key not in saved_views.LISTS:
        return HttpResponseBadRequest(
            f"There is no list '{list_key[:40]}' to save a view of.", content_type="text/plain"
        )
    query = saved_views.query_from_referer(
        request.headers.get("referer", ""), list_key=list_key, host=request.get_host()
    )
    if query is None:
        query = request.POST.get("query", "")
    try:
        view = saved_views.saved_view_create(
            user=request.user, list_key=list_key, name=request.POST.get("name", ""), query=query
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(saved_views.list_url(list_key) + (f"?{saved_views.clean_query(query)}" if query else ""))
    messages.success(request, f"Saved the view “{view.name}”.")
    return redirect(saved_views.list_url(list_key) + (f"?{view.query}" if view.query else ""))


@require_POST
def saved_view_delete(request: HttpRequest, view_id: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=view_id, user=request.user)  # someone else's: 404
    list_key, name = view.list_key, view.name
    view.delete()
    messages.success(request, f"Deleted the view “{name}”.")
    return redirect(saved_views.list_url(list_key))
