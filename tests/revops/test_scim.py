"""SCIM 2.0 provisioning: exact behaviour, and scim2-tester's checks over real HTTP."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.models import Session

from revops.api_keys import api_key_create
from revops.models import ApiKey, Role, User
from revops.sso.models import GroupMapping, IdentityProvider, ScimGroup
from revops.sso.services import scim_token_create
from tests.factories import TeamFactory, UserFactory

SCIM = "application/scim+json"


@pytest.fixture
def provider(db):
    idp = IdentityProvider.objects.create(
        name="Okta",
        slug="okta",
        kind=IdentityProvider.Kind.OIDC,
        domains=["example.test"],
        issuer_url="https://example.okta.com",
        client_id="revops",
    )
    GroupMapping.objects.create(identity_provider=idp, group="Finance", role=Role.FINANCE, team=TeamFactory(name="Fin"))
    GroupMapping.objects.create(identity_provider=idp, group="Sales", role=Role.AE)
    return idp


@pytest.fixture
def token(provider):
    return scim_token_create(identity_provider=provider)


@pytest.fixture
def scim(client, token):
    def call(method: str, path: str, body: dict | None = None, **extra):
        return getattr(client, method)(
            f"/scim/v2/{path}",
            data=json.dumps(body) if body is not None else None,
            content_type=SCIM,
            HTTP_AUTHORIZATION=f"Bearer {token}",
            **extra,
        )

    return call


def _new_user(scim, email: str = "pat@example.test", **extra) -> dict:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Pat", "familyName": "Doe"},
        "emails": [{"value": email, "primary": True}],
        "active": True,
        "externalId": "00u1",
        **extra,
    }
    response = scim("post", "Users", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_a_browser_session_gets_401_even_as_admin(client, make_user, token):
    client.force_login(make_user(Role.ADMIN))
    response = client.get("/scim/v2/Users")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/scim/v2/Users", HTTP_AUTHORIZATION="Bearer scim_not-a-token").status_code == 401


def test_created_user_gets_the_role_and_team_of_the_groups_pushed_after(scim):
    created = _new_user(scim)
    person = User.objects.get(email="pat@example.test")
    assert (created["userName"], created["active"], person.name, person.has_usable_password()) == (
        "pat@example.test",
        True,
        "Pat Doe",
        False,
    )
    group = scim("post", "Groups", {"displayName": "Finance", "members": [{"value": created["id"]}]})
    assert group.status_code == 201
    person.refresh_from_db()
    assert (person.role, person.team.name) == (Role.FINANCE, "Fin")
    # Leaving the only role-giving group keeps the role until another mapped group says otherwise;
    # joining Sales as well: finance has more reach, so it stays finance (ROLE_PRECEDENCE).
    scim("post", "Groups", {"displayName": "Sales", "members": [{"value": created["id"]}]})
    person.refresh_from_db()
    assert person.role == Role.FINANCE
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": f'members[value eq "{created["id"]}"]'}],
    }
    assert scim("patch", f"Groups/{group.json()['id']}", patch).status_code == 200
    person.refresh_from_db()
    assert person.role == Role.AE  # only Sales is left
    listed = scim("get", 'Users?filter=userName eq "pat@example.test"').json()
    assert (listed["totalResults"], [g["display"] for g in listed["Resources"][0]["groups"]]) == (1, ["Sales"])


def test_deactivation_ends_sessions_and_revokes_keys_in_the_same_request(client, scim, provider):
    created = _new_user(scim)
    person = User.objects.get(pk=created["id"])
    browser = type(client)()
    browser.force_login(person)
    assert browser.get("/").status_code == 200
    _, key = api_key_create(name="bi", scopes=["read"], created_by=person, acts_as=person)
    other = UserFactory(email="someone@example.test")
    other_browser = type(client)()
    other_browser.force_login(other)
    assert Session.objects.count() == 2

    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    response = scim("patch", f"Users/{created['id']}", patch)

    assert response.status_code == 200 and response.json()["active"] is False
    person.refresh_from_db()
    assert person.is_active is False
    assert Session.objects.count() == 1  # theirs is gone, the other person's stays
    assert ApiKey.objects.get(acts_as=person).revoked_at is not None
    locked = browser.get("/")
    assert locked.status_code == 302 and locked["Location"].startswith("/auth/login/")
    assert client.get("/api/v1/alerts", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    assert other_browser.get("/").status_code == 200


def test_bad_input_is_a_scim_error_naming_the_problem(scim):
    assert scim("post", "Users", {"userName": ""}).json()["detail"] == "userName must be a non-empty string."
    bad_email = scim("post", "Users", {"userName": "x", "emails": [{"value": "not-an-email"}]})
    assert (bad_email.status_code, bad_email.json()["scimType"]) == (400, "invalidValue")
    _new_user(scim)
    clash = scim("post", "Users", {"userName": "pat2", "emails": [{"value": "pat@example.test"}]})
    assert (clash.status_code, clash.json()["scimType"]) == (409, "uniqueness")
    unknown = scim("post", "Groups", {"displayName": "G", "members": [{"value": "999999"}]})
    assert unknown.status_code == 400 and "Unknown member(s) 999999" in unknown.json()["detail"]
    assert not ScimGroup.objects.filter(display_name="G").exists()  # nothing half-applied
    assert scim("get", 'Users?filter=title co "x"').json()["scimType"] == "invalidFilter"
    assert scim("get", "Users/12345").status_code == 404


def test_another_providers_people_are_invisible(scim, db):
    created = _new_user(scim)
    other = IdentityProvider.objects.create(
        name="Entra", slug="entra", kind="oidc", domains=["other.test"], issuer_url="https://x.test", client_id="c"
    )
    other_token = scim_token_create(identity_provider=other)
    from django.test import Client

    response = Client().get(f"/scim/v2/Users/{created['id']}", HTTP_AUTHORIZATION=f"Bearer {other_token}")
    assert response.status_code == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_scim2_tester_checks_pass_over_http(live_server, provider, token):
    """scim2-tester (its httpx2 client, over HTTP to the live server) runs discovery and CRUD."""
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server
    from scim2_tester.utils import Status

    http = Client(base_url=f"{live_server.url}/scim/v2", headers={"Authorization": f"Bearer {token}"})
    results = check_server(SyncSCIMClient(http))
    failed = [(r.title, r.resource_type, r.reason) for r in results if r.status not in (Status.SUCCESS,)]
    print(f"scim2-tester: {len(results)} checks, {len(results) - len(failed)} passed")
    for title, resource_type, reason in failed:
        print(f"  {resource_type or '-'}: {title}: {reason}")
    # What fails, and why it is revops's rule rather than a bug: revops keeps one name (given and
    # family names are derived from it, so a random given/family pair does not round-trip),
    # "active" is never absent, and a group's members must be people already provisioned (the
    # tester invents member ids). Everything else — discovery, create, read, filter, search,
    # attributes, replace, patch, delete — passes.
    # scim2-tester fills random values, so which of these refusals it meets varies a little run
    # to run; nothing outside them may fail, and discovery and the CRUD core always pass.
    refusals = {
        ("check_add_attribute", "User"),
        ("check_replace_attribute", "User"),
        ("check_remove_attribute", "User"),
    }
    refusals |= {
        (title, "Group")
        for title in (
            "object_query_with_attributes",
            "object_list_with_attributes",
            "search_with_attributes",
            "object_replacement",
            "check_add_attribute",
            "check_remove_attribute",
            "check_replace_attribute",
        )
    }
    assert {(title, resource_type) for title, resource_type, _ in failed} <= refusals
    assert all(
        "'name'" in reason or "active cannot be removed" in reason or "provision the users first" in reason
        for _, _, reason in failed
    )
    core = {"object_creation", "object_query", "object_query_without_id", "object_replacement", "object_deletion"}
    passed = {(r.title, r.resource_type) for r in results if r.status == Status.SUCCESS}
    assert {(title, "User") for title in core} <= passed
