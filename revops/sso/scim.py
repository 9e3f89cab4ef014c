"""SCIM 2.0 (RFC 7643/7644) for a provider's provisioning client: /scim/v2/Users and /Groups.

Bearer token only (one per identity provider; a browser session gets 401). What a provider
sees and changes is what it provisioned: its ScimUser and ScimGroup rows. Deactivating a
person (``active: false``, or DELETE) locks them out in the same request: inactive, their
sessions deleted, their API keys revoked (``services.user_deactivate``). Group membership
gives roles and teams through the provider's group mappings, never the person.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from revops.models import User
from revops.sso.models import IdentityProvider, ScimGroup, ScimUser
from revops.sso.services import SsoRefused, email_domain, grant_for_groups, provider_for_scim_token, user_deactivate

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONTENT_TYPE = "application/scim+json"
MAX_RESULTS = 200
FILTER = re.compile(r'^\s*([A-Za-z.$]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$')


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str = "") -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _json(data: dict, status: int = 200, **headers: str) -> JsonResponse:
    response = JsonResponse(data, status=status, content_type=CONTENT_TYPE)
    for name, value in headers.items():
        response[name] = value
    return response


def _error(error: ScimError) -> JsonResponse:
    body = {"schemas": [ERROR_SCHEMA], "status": str(error.status), "detail": error.detail}
    if error.scim_type:
        body["scimType"] = error.scim_type
    response = _json(body, status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="revops SCIM"'
    return response


def scim_view(view: Callable) -> Callable:
    """Bearer-token authentication, JSON bodies and SCIM errors for every endpoint."""

    @csrf_exempt
    @login_not_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        idp = provider_for_scim_token(token.strip()) if scheme.lower() == "bearer" else None
        if idp is None:
            return _error(ScimError(401, "A SCIM bearer token of an active identity provider is required."))
        body = None
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                body = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError):
                return _error(ScimError(400, "The body is not JSON.", "invalidSyntax"))
            if not isinstance(body, dict):
                return _error(ScimError(400, "The body must be a JSON object.", "invalidSyntax"))
        try:
            return view(request, idp, body, *args, **kwargs)
        except ScimError as error:
            return _error(error)
        except SsoRefused as refused:
            return _error(ScimError(400, str(refused), "invalidValue"))

    return wrapper


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/scim/v2").rstrip("/")


# --- discovery -------------------------------------------------------------------------


def _schemas() -> list[dict]:
    from scim2_models import Group
    from scim2_models import User as ScimUserModel

    user = json.loads(ScimUserModel.to_schema().model_dump_json(exclude_none=True))
    group = json.loads(Group.to_schema().model_dump_json(exclude_none=True))
    # Publish only what revops keeps, so clients (and scim2-tester) do not send the rest.
    user["attributes"] = [a for a in user["attributes"] if a["name"] in USER_ATTRIBUTES]
    group["attributes"] = [a for a in group["attributes"] if a["name"] in ("displayName", "members")]
    for attribute in user["attributes"]:
        if attribute["name"] == "name":
            attribute["subAttributes"] = [x for x in attribute["subAttributes"] if x["name"] in NAME_PARTS]
        # A revops person signs in by email: a User without one cannot be provisioned.
        if attribute["name"] == "emails":
            attribute["required"] = True
            for sub in attribute.get("subAttributes", []):
                if sub["name"] == "value":
                    sub["required"] = True
        if attribute["name"] in ("emails", "groups", "members"):
            attribute["subAttributes"] = [x for x in attribute["subAttributes"] if x["name"] in ("value", "primary")]
    for attribute in group["attributes"]:
        if attribute["name"] == "members":
            attribute["subAttributes"] = [x for x in attribute["subAttributes"] if x["name"] == "value"]
    return [user, group]


USER_ATTRIBUTES = ("userName", "name", "displayName", "emails", "active", "groups")
NAME_PARTS = ("formatted", "givenName", "familyName")


def _project(request: HttpRequest, data: dict, spec: dict | None = None) -> dict:
    """``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5); id and schemas always stay."""
    source = spec if spec is not None else request.GET
    wanted = _names(source.get("attributes"))
    excluded = _names(source.get("excludedAttributes"))
    keep = {"id", "schemas"}
    if wanted:
        return {k: v for k, v in data.items() if k.lower() in wanted or k in keep}
    if excluded:
        return {k: v for k, v in data.items() if k.lower() not in excluded or k in keep}
    return data


def _names(value) -> set[str]:
    if not value:
        return set()
    items = value if isinstance(value, list) else str(value).split(",")
    return {str(item).strip().split(".")[0].split(":")[-1].lower() for item in items if str(item).strip()}


@scim_view
def root_search(request, idp, body):
    """POST /.search at the root (RFC 7644 §3.4.3): people, as /Users/.search."""
    _only(request, "POST")
    return _user_search(request, idp, body)


@scim_view
def not_found(request, idp, body, rest: str):
    raise ScimError(404, f"There is no SCIM endpoint /scim/v2/{rest}.")


def _resource_types(request: HttpRequest) -> list[dict]:
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": name,
            "name": name,
            "endpoint": f"/{name}s",
            "description": name,
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{_base(request)}/ResourceTypes/{name}"},
        }
        for name, schema in (("User", USER_SCHEMA), ("Group", GROUP_SCHEMA))
    ]


def _list(resources: list[dict], *, total: int | None = None, start: int = 1) -> dict:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(resources) if total is None else total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@scim_view
def service_provider_config(request, idp, body):
    _only(request, "GET")
    return _json(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "The identity provider's SCIM token (Admin → Identity providers).",
                    "primary": True,
                }
            ],
            "meta": {"resourceType": "ServiceProviderConfig", "location": f"{_base(request)}/ServiceProviderConfig"},
        }
    )


@scim_view
def resource_types(request, idp, body, name: str = ""):
    _only(request, "GET")
    types = _resource_types(request)
    if not name:
        return _json(_list(types))
    for item in types:
        if item["id"] == name:
            return _json(item)
    raise ScimError(404, f"No resource type {name!r}.")


@scim_view
def schemas(request, idp, body, schema_id: str = ""):
    _only(request, "GET")
    items = _schemas()
    if not schema_id:
        return _json(_list(items))
    for item in items:
        if item["id"] == schema_id:
            return _json(item)
    raise ScimError(404, f"No schema {schema_id!r}.")


def _only(request: HttpRequest, *methods: str) -> None:
    if request.method not in methods:
        raise ScimError(405, f"{request.method} is not supported here; use {', '.join(methods)}.")


# --- users -----------------------------------------------------------------------------


def user_resource(request: HttpRequest, link: ScimUser) -> dict:
    user = link.user
    groups = [
        {"value": str(g.pk), "display": g.display_name, "$ref": f"{_base(request)}/Groups/{g.pk}"}
        for g in user.scim_groups.filter(identity_provider_id=link.identity_provider_id)
    ]
    given, _, family = (user.name or "").partition(" ")
    data = {
        "schemas": [USER_SCHEMA],
        "id": str(user.pk),
        "userName": link.user_name,
        "emails": link.emails or [{"value": user.email, "primary": True}],
        "active": user.is_active,
        "groups": groups,
        "meta": {
            "resourceType": "User",
            "created": link.created_at.isoformat(),
            "lastModified": link.updated_at.isoformat(),
            "location": f"{_base(request)}/Users/{user.pk}",
        },
    }
    if user.name:
        data["name"] = {"formatted": user.name, "givenName": given, "familyName": family}
        data["displayName"] = user.name
    if link.external_id:
        data["externalId"] = link.external_id
    return data


def _user_fields(body: dict) -> dict:
    """userName, email, name and active from a SCIM User body (the missing ones as None)."""
    user_name = body.get("userName")
    if user_name is not None and (not isinstance(user_name, str) or not user_name.strip()):
        raise ScimError(400, "userName must be a non-empty string.", "invalidValue")
    emails = body.get("emails")
    email = None
    if emails is not None:
        if not isinstance(emails, list) or not all(isinstance(e, dict) for e in emails):
            raise ScimError(400, "emails must be a list of objects with a value.", "invalidValue")
        ordered = sorted(emails, key=lambda e: not e.get("primary"))
        email = next((str(e["value"]).strip().lower() for e in ordered if e.get("value")), None)
    if email is None and user_name and "@" in user_name:
        email = user_name.strip().lower()
    if email is not None and (email.count("@") != 1 or not email_domain(email) or len(email) > 254):
        raise ScimError(400, f"{email!r} is not an email address.", "invalidValue")
    name = body.get("displayName")
    parts = body.get("name") if isinstance(body.get("name"), dict) else {}
    if not name:
        name = parts.get("formatted") or " ".join(p for p in (parts.get("givenName"), parts.get("familyName")) if p)
    active = body.get("active")
    if active is not None and not isinstance(active, bool):
        if isinstance(active, str) and active.lower() in ("true", "false"):
            active = active.lower() == "true"
        else:
            raise ScimError(400, "active must be true or false.", "invalidValue")
    external_id = body.get("externalId")
    raw = [
        {k: e[k] for k in ("value", "primary") if k in e}
        for e in emails or []
        if isinstance(e, dict) and e.get("value")
    ]
    return {
        "user_name": user_name,
        "email": email,
        "name": name or None,
        "active": active,
        "external_id": external_id,
        "emails": raw,
    }


def _link(idp: IdentityProvider, user_id: str) -> ScimUser:
    link = (
        ScimUser.objects.filter(identity_provider=idp, user_id=int(user_id) if user_id.isdigit() else -1)
        .select_related("user")
        .first()
    )
    if link is None:
        raise ScimError(404, f"No user {user_id} provisioned by {idp}.")
    return link


def _save_user(link: ScimUser, fields: dict) -> None:
    user = link.user
    if fields.get("email") and fields["email"] != user.email:
        if User.objects.exclude(pk=user.pk).filter(email__iexact=fields["email"]).exists():
            raise ScimError(409, f"Another person already has {fields['email']}.", "uniqueness")
        user.email = fields["email"]
    if "name" in fields:
        user.name = (fields["name"] or "")[:200]
    user.save()
    if fields.get("user_name"):
        link.user_name = fields["user_name"]
    if fields.get("external_id") is not None:
        link.external_id = str(fields["external_id"])
    if fields.get("emails"):
        link.emails = fields["emails"]
    link.updated_at = timezone.now()
    link.save()
    if fields.get("active") is False:
        user_deactivate(user=user)
    elif fields.get("active") is True and not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])


@scim_view
def users(request, idp, body):
    _only(request, "GET", "POST")
    if request.method == "POST":
        return _user_create(request, idp, body)
    return _user_search(request, idp, request.GET)


def _user_search(request, idp, spec) -> JsonResponse:
    links = ScimUser.objects.filter(identity_provider=idp).select_related("user").order_by("user_id")
    links = _filter_users(links, spec.get("filter", ""))
    return _paged(request, links, lambda link: _project(request, user_resource(request, link), spec), spec)


def _filter_users(links, expression: str):
    if not expression:
        return links
    match = FILTER.match(expression)
    fields = {
        "username": "user_name__iexact",
        "externalid": "external_id",
        "emails.value": "user__email__iexact",
        "emails": "user__email__iexact",
        "displayname": "user__name",
        "id": "user_id",
    }
    if not match or match.group(1).lower() not in fields:
        raise ScimError(
            400, f'Unsupported filter {expression!r}; use attribute eq "value" on {", ".join(fields)}.', "invalidFilter"
        )
    value = match.group(2).replace('\\"', '"')
    if fields[match.group(1).lower()] == "user_id" and not value.isdigit():
        return links.none()
    return links.filter(**{fields[match.group(1).lower()]: value})


def _paged(request, queryset, render, spec=None) -> JsonResponse:
    spec = request.GET if spec is None else spec
    try:
        start = max(int(spec.get("startIndex", 1)), 1)
        count = min(max(int(spec.get("count", MAX_RESULTS)), 0), MAX_RESULTS)
    except ValueError:
        raise ScimError(400, "startIndex and count must be whole numbers.", "invalidValue") from None
    total = queryset.count()
    page = list(queryset[start - 1 : start - 1 + count])
    return _json(_list([render(item) for item in page], total=total, start=start))


@transaction.atomic
def _user_create(request, idp, body) -> JsonResponse:
    fields = _user_fields(body)
    if not fields["user_name"]:
        raise ScimError(400, "userName is required.", "invalidValue")
    if not fields["email"]:
        raise ScimError(400, "An email is required (emails, or a userName that is an email address).", "invalidValue")
    existing = User.objects.filter(email__iexact=fields["email"]).first()
    if existing is not None:
        if ScimUser.objects.filter(user=existing).exists() or email_domain(existing.email) not in idp.domains:
            raise ScimError(409, f"A person with {fields['email']} already exists.", "uniqueness")
        user = existing  # a person of this provider's domain, created before SCIM: adopted
    else:
        user = User.objects.create_user(fields["email"], None, name=(fields["name"] or fields["user_name"])[:200])
        user.set_unusable_password()
        # No group yet, so no access until the provider's groups map them to a role.
        user.is_active = fields["active"] is not False
        user.save()
    try:
        with transaction.atomic():
            link = ScimUser.objects.create(
                identity_provider=idp,
                user=user,
                user_name=fields["user_name"],
                external_id=str(fields["external_id"] or ""),
                emails=fields["emails"],
            )
    except IntegrityError:
        raise ScimError(409, f"{fields['user_name']} is already provisioned.", "uniqueness") from None
    if fields["active"] is False:
        user_deactivate(user=user)
    link.user.refresh_from_db()
    return _json(user_resource(request, link), status=201, Location=f"{_base(request)}/Users/{user.pk}")


@scim_view
def user_detail(request, idp, body, user_id: str):
    if user_id == ".search":
        _only(request, "POST")
        return _user_search(request, idp, body)
    _only(request, "GET", "PUT", "PATCH", "DELETE")
    link = _link(idp, user_id)
    if request.method == "GET":
        return _json(_project(request, user_resource(request, link)))
    if request.method == "DELETE":
        with transaction.atomic():
            user_deactivate(user=link.user)
            link.user.scim_groups.remove(*link.user.scim_groups.filter(identity_provider=idp))
            link.delete()
        return HttpResponse(status=204)
    with transaction.atomic():
        if request.method == "PUT":
            fields = _user_fields(body)
            if not fields["user_name"]:
                raise ScimError(400, "userName is required.", "invalidValue")
            _save_user(link, fields)
        else:
            _save_user(link, _user_patch(body))
    link.user.refresh_from_db()
    return _json(user_resource(request, link))


def _operations(body: dict) -> list[dict]:
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "A PATCH needs Operations: a list of {op, path?, value?}.", "invalidSyntax")
    for operation in operations:
        if not isinstance(operation, dict) or str(operation.get("op", "")).lower() not in ("add", "replace", "remove"):
            raise ScimError(400, "Each operation's op is add, replace or remove.", "invalidSyntax")
    return operations


USER_PATHS = {
    "active": "active",
    "username": "userName",
    "displayname": "displayName",
    "externalid": "externalId",
    "emails": "emails",
    'emails[type eq "work"].value': "emails",
    "name": "name",
    "name.formatted": "name.formatted",
    "name.givenname": "name.givenName",
    "name.familyname": "name.familyName",
}


def _user_patch(body: dict) -> dict:
    changes: dict = {}
    for operation in _operations(body):
        op, path, value = str(operation["op"]).lower(), operation.get("path"), operation.get("value")
        if op == "remove":
            removable = {"externalid": ("externalId", ""), "displayname": ("displayName", ""), "name": ("name", {})}
            if str(path).lower() not in removable:
                raise ScimError(400, f"{path or 'That attribute'} cannot be removed from a person.", "mutability")
            key, empty = removable[str(path).lower()]
            changes[key] = empty
            continue
        items = value.items() if path is None and isinstance(value, dict) else [(path, value)]
        for item_path, item_value in items:
            key = USER_PATHS.get(str(item_path).lower())
            if key is None:
                raise ScimError(400, f"Unsupported path {item_path!r}.", "invalidPath")
            if key == "emails" and not isinstance(item_value, list):
                item_value = [{"value": item_value, "primary": True}]
            if key == "name":
                if not isinstance(item_value, dict):
                    raise ScimError(400, "name must be an object (formatted, givenName, familyName).", "invalidValue")
                changes["name"] = {**changes.get("name", {}), **item_value}
            elif key.startswith("name."):
                changes.setdefault("name", {})[key.split(".", 1)[1]] = item_value
            else:
                changes[key] = item_value
    return {k: v for k, v in _user_fields(changes).items() if k in _patched_keys(changes)}


def _patched_keys(changes: dict) -> set[str]:
    keys = {"userName": "user_name", "emails": "email", "displayName": "name", "name": "name", "active": "active"}
    keys["externalId"] = "external_id"
    found = {keys[k] for k in changes}
    return found | ({"emails"} if "emails" in changes else set())


# --- groups ----------------------------------------------------------------------------


def group_resource(request: HttpRequest, group: ScimGroup) -> dict:
    data = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "displayName": group.display_name,
        "members": [{"value": str(u.pk)} for u in group.members.order_by("pk")],
        "meta": {
            "resourceType": "Group",
            "created": group.created_at.isoformat(),
            "lastModified": group.updated_at.isoformat(),
            "location": f"{_base(request)}/Groups/{group.pk}",
        },
    }
    if group.external_id:
        data["externalId"] = group.external_id
    return data


def _members(idp: IdentityProvider, value) -> list[User]:
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(m, dict) and m.get("value") for m in value):
        raise ScimError(400, "members must be a list of {value: <user id>}.", "invalidValue")
    ids = {str(m["value"]) for m in value}
    found = list(
        User.objects.filter(pk__in=[int(i) for i in ids if i.isdigit()], scim_identities__identity_provider=idp)
    )
    if len(found) != len(ids):
        missing = sorted(ids - {str(u.pk) for u in found})
        raise ScimError(400, f"Unknown member(s) {', '.join(missing)}: provision the users first.", "invalidValue")
    return found


def regrant(idp: IdentityProvider, users: list[User]) -> None:
    """Roles and teams follow the provider's groups: each affected person gets the grant of
    the groups they are now in (left as is when none of them maps to a role)."""
    for user in users:
        names = list(user.scim_groups.filter(identity_provider=idp).values_list("display_name", flat=True))
        try:
            grant = grant_for_groups(identity_provider=idp, groups=names)
        except SsoRefused:
            continue
        changed = []
        if user.role != grant.role:
            user.role = grant.role
            changed.append("role")
        if grant.team is not None and user.team_id != grant.team.pk:
            user.team = grant.team
            changed.append("team")
        if changed:
            user.save(update_fields=changed)


@scim_view
def groups(request, idp, body):
    _only(request, "GET", "POST")
    if request.method == "POST":
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise ScimError(400, "displayName is required.", "invalidValue")
        with transaction.atomic():
            members = _members(idp, body.get("members"))
            try:
                with transaction.atomic():
                    group = ScimGroup.objects.create(
                        identity_provider=idp, display_name=name.strip(), external_id=str(body.get("externalId") or "")
                    )
            except IntegrityError:
                raise ScimError(409, f"A group named {name!r} exists.", "uniqueness") from None
            group.members.set(members)
            regrant(idp, members)
        return _json(group_resource(request, group), status=201, Location=f"{_base(request)}/Groups/{group.pk}")
    return _group_search(request, idp, request.GET)


def _group_search(request, idp, spec) -> JsonResponse:
    queryset = ScimGroup.objects.filter(identity_provider=idp).order_by("pk")
    expression = spec.get("filter", "")
    if expression:
        match = FILTER.match(expression)
        fields = {"displayname": "display_name", "externalid": "external_id", "id": "pk"}
        if not match or match.group(1).lower() not in fields:
            raise ScimError(400, f"Unsupported filter {expression!r}.", "invalidFilter")
        value = match.group(2)
        if fields[match.group(1).lower()] == "pk" and not value.isdigit():
            queryset = queryset.none()
        else:
            queryset = queryset.filter(**{fields[match.group(1).lower()]: value})
    return _paged(request, queryset, lambda g: _project(request, group_resource(request, g), spec), spec)


MEMBER_FILTER = re.compile(r'^members\[value eq "([^"]+)"\]$', re.IGNORECASE)


@scim_view
def group_detail(request, idp, body, group_id: str):
    if group_id == ".search":
        _only(request, "POST")
        return _group_search(request, idp, body)
    _only(request, "GET", "PUT", "PATCH", "DELETE")
    group = ScimGroup.objects.filter(identity_provider=idp, pk=int(group_id) if group_id.isdigit() else -1).first()
    if group is None:
        raise ScimError(404, f"No group {group_id} provisioned by {idp}.")
    if request.method == "GET":
        return _json(_project(request, group_resource(request, group)))
    with transaction.atomic():
        before = set(group.members.all())
        if request.method == "DELETE":
            group.delete()
            regrant(idp, list(before))
            return HttpResponse(status=204)
        if request.method == "PUT":
            name = body.get("displayName")
            if not isinstance(name, str) or not name.strip():
                raise ScimError(400, "displayName is required.", "invalidValue")
            group.display_name = name.strip()
            group.members.set(_members(idp, body.get("members")))
        else:
            _group_patch(idp, group, body)
        group.updated_at = timezone.now()
        try:
            with transaction.atomic():
                group.save()
        except IntegrityError:
            raise ScimError(409, f"A group named {group.display_name!r} exists.", "uniqueness") from None
        regrant(idp, list(before | set(group.members.all())))
    return _json(group_resource(request, group))


def _group_patch(idp: IdentityProvider, group: ScimGroup, body: dict) -> None:
    for operation in _operations(body):
        op, path, value = str(operation["op"]).lower(), operation.get("path") or "", operation.get("value")
        if not path and isinstance(value, dict):
            for key, item in value.items():
                _group_patch(idp, group, {"Operations": [{"op": op, "path": key, "value": item}]})
            continue
        lowered = path.lower()
        if lowered == "displayname" and op in ("add", "replace"):
            if not isinstance(value, str) or not value.strip():
                raise ScimError(400, "displayName must be a non-empty string.", "invalidValue")
            group.display_name = value.strip()
        elif lowered == "externalid":
            group.external_id = "" if op == "remove" else str(value or "")
        elif lowered == "members" and op == "add":
            group.members.add(*_members(idp, value))
        elif lowered == "members" and op == "replace":
            group.members.set(_members(idp, value))
        elif lowered == "members" and op == "remove":
            if value is None:
                group.members.clear()
            else:
                group.members.remove(*_members(idp, value))
        elif MEMBER_FILTER.match(path) and op == "remove":
            group.members.remove(*_members(idp, [{"value": MEMBER_FILTER.match(path).group(1)}]))
        else:
            raise ScimError(400, f"Unsupported operation {op} on {path!r}.", "invalidPath")
