"""``{% saved_views "book" %}``: a list's saved views and a form to save the current one."""

from __future__ import annotations

from django import template

from revops.saved_views import list_url, saved_views_for

register = template.Library()


@register.inclusion_tag("revops/_saved_views.html", takes_context=True)
def saved_views(context, list_key: str) -> dict:
    request = context["request"]
    return {
        "list_key": list_key,
        "list_url": list_url(list_key),
        "views": saved_views_for(request.user, list_key),
        "query": request.GET.urlencode(),
        "csrf_token": context.get("csrf_token"),
    }
