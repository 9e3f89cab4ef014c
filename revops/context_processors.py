from __future__ import annotations

from django.urls import reverse

from revops.navigation import items_for


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    path = request.path
    items = []
    for item in items_for(user.role):
        active = path == "/" if item.prefix == "/" else path.startswith(item.prefix)
        items.append({"label": item.label, "url": reverse(item.url_name), "active": active})
    return {"nav_items": items}
