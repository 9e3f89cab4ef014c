"""Bearer-key authentication, scopes and rate limits for the HTTP API."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Schema
from ninja.errors import HttpError
from ninja.security import HttpBearer

from revops.api_keys import api_key_authenticate, api_key_rate_check
from revops.models import ApiKey


class ApiError(Schema):
    detail: str


class RateLimited(HttpError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(429, f"Rate limit exceeded for this key; retry after {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``. Unknown or revoked keys get 401; a key whose
    creator is no longer active 403 (it is inactive with them); over-rate 429."""

    def authenticate(self, request: HttpRequest, token: str):
        key = api_key_authenticate(token.strip())
        if key is None:
            return None
        if key.created_by is not None and not key.created_by.is_active:
            raise HttpError(
                403,
                f"This key was created by {key.created_by.email}, who is no longer active, so it is inactive "
                "too; an admin or finance person can create a new one (Data → API keys).",
            )
        decision = api_key_rate_check(key=key)
        if not decision.allowed:
            raise RateLimited(decision.retry_after_s)
        request.api_key = key
        return key


def require_scope(request: HttpRequest, scope: str) -> None:
    key = getattr(request, "api_key", None)
    if key is None or scope not in key.scopes:
        raise HttpError(403, f"This key lacks the '{scope}' scope.")


class ReadKeyAuth(ApiKeyAuth):
    """A key with the read scope; it reads as its person (``acts_as``): exactly what that
    person may see through the pages, nothing more."""

    def authenticate(self, request: HttpRequest, token: str):
        key = super().authenticate(request, token)
        if key is None:
            return None
        require_scope(request, ApiKey.Scope.READ)
        person = key.acts_as
        if person is None:
            raise HttpError(
                403,
                "This key reads as nobody (its person was removed), so it can read nothing; "
                "create a read key that acts as a person (Data → API keys, or create_api_key --as EMAIL).",
            )
        if not person.is_active:
            raise HttpError(403, "The person this key reads as is no longer active; create a new key.")
        return person
