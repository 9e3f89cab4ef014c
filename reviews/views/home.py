"""Reviews' panels on the home page (``revops.home``): this month's review and its overdue
actions for the people who run it, the latest releases' verdicts for product managers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviews import services
from reviews.models import ActionItem, ActionStatus
from reviews.product import latest_release_verdicts
from revops.clock import today_utc
from revops.home import require_panel

TEMPLATE = "reviews/home.html"
SHOWN = 5


@require_GET
def home_review(request: HttpRequest) -> HttpResponse:
    require_panel(request, "review")
    today = today_utc()
    readable = services.readable_reviews(request.user).order_by("-month")
    latest = readable.first()
    overdue = ActionItem.objects.filter(status=ActionStatus.OPEN, due_on__lt=today, review__in=readable).select_related(
        "review", "owner"
    )
    mine = overdue.filter(owner=request.user) if request.user.role not in services.ANALYSIS_ROLES else overdue
    context = {
        "latest": latest,
        "overdue": list(mine.order_by("due_on", "pk")[:SHOWN]),
        "overdue_count": mine.count(),
        "today": today,
        "month_started": today.replace(day=1),
    }
    return render(request, f"{TEMPLATE}#review", context)


@require_GET
def home_releases(request: HttpRequest) -> HttpResponse:
    require_panel(request, "releases")
    verdicts = latest_release_verdicts(as_of=today_utc(), limit=3)
    return render(request, f"{TEMPLATE}#releases", {"verdicts": verdicts})
