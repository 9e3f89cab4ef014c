from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from revops import health, reference
from revops.access import people_directory, teams_managed_by
from revops.home import panels_for
from revops.models import Role, Team
from revops.notices import notices_for
from revops.selectors import PEOPLE_SORTS, headcount_by_role, people_list, teams_overview

PEOPLE_PAGE = 50
ROLE_TEMPLATES = {role: f"revops/home_{role}.html" for role in Role.values}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own page; the shared parts come from revops/home_base.html."""
    user = request.user
    context = {
        "teammates": people_directory(user).filter(team_id=user.team_id).exclude(pk=user.pk).select_related("team")
        if user.team_id
        else [],
        "managed_teams": teams_managed_by(user),
        "notices": notices_for(request),
        "panels": panels_for(user.role),
    }
    if user.role in (Role.LEADER, Role.FINANCE, Role.ADMIN):
        context["teams"] = teams_overview()
        context["headcount"] = headcount_by_role()
        context["roles"] = Role
    if user.role == Role.ADMIN:
        context["components"] = _health_components()
    return render(request, ROLE_TEMPLATES[user.role], context)


@require_GET
def people(request: HttpRequest) -> HttpResponse:
    role = request.GET.get("role", "")
    if role and role not in Role.values:
        role = ""
    try:
        team_id = int(request.GET.get("team") or 0) or None
    except ValueError:
        team_id = None
    q = request.GET.get("q", "").strip()[:100]
    sort = request.GET.get("sort", "name")
    sort = sort if sort in PEOPLE_SORTS else "name"
    rows = people_list(viewer=request.user, role=role, team_id=team_id, q=q, sort=sort)
    page = Paginator(rows, PEOPLE_PAGE).get_page(request.GET.get("page"))
    template = "revops/people.html#people-table" if request.htmx else "revops/people.html"
    return render(
        request,
        template,
        {
            "people": page,
            "page": page,
            "sort": sort,
            "roles": Role.choices,
            "teams": Team.objects.filter(members__in=people_directory(request.user)).distinct(),
            "filters": {"role": role, "team": team_id, "q": q},
        },
    )


@require_GET
def docs(request: HttpRequest, name: str) -> HttpResponse:
    """The product's reference (docs/*.md), for everyone signed in."""
    doc = reference.document(name)
    if doc is None:
        raise Http404("No such document.")
    others = [(key, title) for key, (_, title) in reference.DOCUMENTS.items() if key != name]
    return render(request, "revops/docs.html", {"doc": doc, "others": others})


@require_GET
def docs_example(request: HttpRequest, name: str) -> HttpResponse:
    """An example import file, as a download (the names are listed, nothing else is served)."""
    path = reference.example_file(name)
    if path is None:
        raise Http404("No such example.")
    content_type = "text/csv" if path.suffix == ".csv" else "application/yaml"
    response = HttpResponse(path.read_bytes(), content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return response


@require_GET
def system_status(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("revops.view_system_status"):
        raise PermissionDenied
    return render(request, "revops/system_status.html", {"components": _health_components()})


def _health_components() -> dict[str, dict]:
    components = {"database": health.check_database(), "broker": health.check_broker(), "beat": health.check_beat()}
    if (replica := health.check_replica()) is not None:
        components["replica"] = replica
    return components


@login_not_required
@never_cache
@require_GET
def health_view(request: HttpRequest) -> JsonResponse:
    components = _health_components()
    status, code = health.overall(components)
    return JsonResponse({"status": status, **components}, status=code)


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the manifest (hashed name) exists only after collectstatic.
    return redirect(static("favicon.svg"), permanent=True)


@login_not_required
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A stale form (usually an expired session) sends people back to log in.

    For htmx requests an error page must not be swapped into the layout, so the client
    is told to navigate instead (htmx honours HX-Redirect before looking at the status).
    """
    login_url = reverse("account_login")
    if request.htmx:
        response = HttpResponse(status=403)
        response["HX-Redirect"] = f"{login_url}?{urlencode({'next': request.htmx.current_url_abs_path or '/'})}"
        return response
    messages.warning(request, "Your session expired or the form was stale. Please sign in again.")
    return redirect(f"{login_url}?{urlencode({'next': request.path})}")
