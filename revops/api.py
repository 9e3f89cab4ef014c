"""The HTTP API at /api/v1/ (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from revops.api_auth import ApiKeyAuth, RateLimited

api = NinjaAPI(
    title="revops API",
    version="1",
    urls_namespace="api-v1",
    auth=ApiKeyAuth(),
    description=(
        "Usage ingestion and shared metrics. Authenticate with `Authorization: Bearer <key>`; "
        "the read endpoints also accept a logged-in browser session."
    ),
)


@api.exception_handler(RateLimited)
def rate_limited(request: HttpRequest, exc: RateLimited):
    response = api.create_response(request, {"detail": exc.message}, status=429)
    response["Retry-After"] = str(exc.retry_after_s)
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError):
    response = api.create_response(request, {"detail": "A valid, unrevoked API key is required."}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="revops"'
    return response


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError):
    return api.create_response(request, {"detail": f"Invalid request: {exc.errors}"}, status=400)


api.add_router("/", "usage.ingestion.api.router")
api.add_router("/", "usage.signals.api.router")
api.add_router("/", "comp.api.router")
api.add_router("/", "forecasting.api.router")
api.add_router("/", "exports.api.router")
