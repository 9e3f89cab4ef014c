"""Every page needs login; each role lands on its own page."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from revops.models import Role

pytestmark = pytest.mark.django_db

ROLE_HEADLINES = {
    Role.AE: "Account executive",
    Role.CSM: "Customer success",
    Role.LEADER: "Leader",
    Role.FINANCE: "Finance / deal desk",
    Role.PRODUCT: "Product",
    Role.ADMIN: "Administrator",
}
# Views reachable without login, on purpose.
# sso/start/ is the login page's own form; scim/ answers bearer tokens only (a 401, never a login page).
PUBLIC_PREFIXES = ("auth/", "admin/", "health", "static/", "favicon.ico", "api/", "sso/", "scim/")


def _own_routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every concrete route of the project except the public ones (login, health, admin)."""
    resolver = resolver or get_resolver()
    routes = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(PUBLIC_PREFIXES):
            continue
        if isinstance(pattern, URLResolver):
            routes += _own_routes(pattern, route)
        elif isinstance(pattern, URLPattern) and "<" not in route:
            routes.append("/" + route.lstrip("^").rstrip("$"))
    return routes


def test_there_are_routes_to_check():
    assert "/" in _own_routes() and "/people/" in _own_routes()


@pytest.mark.parametrize("path", _own_routes())
def test_anonymous_requests_redirect_to_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_anonymous_htmx_request_is_redirected_to_login_too(client):
    response = client.get("/people/", headers={"HX-Request": "true"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", [r for r in Role.values if r not in ("finance", "admin")])
def test_each_role_lands_on_its_own_page(client, make_user, role):
    user = make_user(role)
    client.force_login(user)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert response.templates[0].name == f"revops/home_{role}.html"
    assert ROLE_HEADLINES[role] in response.content.decode()


@pytest.mark.parametrize("role", ["finance", "admin"])
def test_finance_and_admin_land_on_their_page_once_they_have_mfa(client, make_user, with_totp, role):
    user = make_user(role)
    with_totp(user)
    client.force_login(user)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert ROLE_HEADLINES[role] in response.content.decode()


def test_leader_landing_shows_head_counts_per_team(client, make_user, team):
    leader = make_user(Role.LEADER)
    team.manager = leader
    team.save()
    make_user(Role.AE, team=team)
    make_user(Role.AE, team=team)
    make_user(Role.CSM, team=team)
    client.force_login(leader)

    response = client.get(reverse("home"))

    row = next(t for t in response.context["teams"] if t.pk == team.pk)
    assert (row.n_members, row.n_ae, row.n_csm) == (3, 2, 1)


def test_navigation_depends_on_role(client, make_user, with_totp):
    ae = make_user(Role.AE)
    admin = make_user(Role.ADMIN)
    with_totp(admin)

    client.force_login(ae)
    ae_labels = [item["label"] for item in client.get("/").context["nav_items"]]
    client.force_login(admin)
    admin_labels = [item["label"] for item in client.get("/").context["nav_items"]]

    assert "System" not in ae_labels
    assert "System" in admin_labels
    assert "Statements" in ae_labels and "Statements" in admin_labels


def test_system_status_page_is_for_admins_only(client, make_user, with_totp):
    client.force_login(make_user(Role.LEADER))
    assert client.get(reverse("system_status")).status_code == 403

    admin = make_user(Role.ADMIN)
    with_totp(admin)
    client.force_login(admin)
    response = client.get(reverse("system_status"))
    assert response.status_code == 200
    assert b"Database" in response.content


def test_static_assets_are_vendored_not_from_a_cdn(client, ae):
    client.force_login(ae)

    html = client.get("/").content.decode()

    assert "/static/vendor/htmx-" in html
    assert "https://" not in html.split("<body")[0]


def test_a_session_cookie_with_a_nul_byte_is_no_session(client):
    # PostgreSQL refuses NUL in text: the lookup must treat it as "not logged in", not fail.
    client.cookies["sessionid"] = "abcdefghij\x00klmnop"
    response = client.get("/api/v1/metrics")
    assert response.status_code == 401


def test_pages_for_a_signed_in_person_are_not_stored_and_carry_a_policy(client, ae):
    client.force_login(ae)

    page = client.get("/people/")

    assert page["Cache-Control"] == "no-store, private"
    policy = page["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_the_login_page_has_the_policy_and_static_files_stay_cacheable(client):
    login = client.get(reverse("account_login"))
    style = client.get("/static/css/app.css")

    assert "default-src 'self'" in login["Content-Security-Policy"]
    assert "no-store" not in style.get("Cache-Control", "")


def test_the_api_docs_load_nothing_from_a_cdn(client):
    html = client.get("/api/v1/docs").content.decode()

    assert "cdn." not in html and "/static/ninja/swagger-ui-bundle" in html


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        ("/accounts/AC%00ME/", None, "The address"),
        ("/book/?q=ac%00me", None, "The parameter 'q'"),
        ("/people/?q=x%00", None, "The parameter 'q'"),
        ("/reviews/", {"note": "a\x00b"}, "The field 'note'"),
        ("/api/v1/alerts?account=ac%00me", None, "The parameter 'account'"),
    ],
)
def test_a_nul_byte_anywhere_is_a_400_that_names_where(client, ae, path, data, field):
    client.force_login(ae)

    response = client.post(path, data) if data else client.get(path)

    assert response.status_code == 400
    assert field in response.content.decode() and "NUL" in response.content.decode()
