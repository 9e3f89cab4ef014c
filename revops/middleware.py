from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from pghistory.middleware import HistoryMiddleware


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Every page needs a login session; the API authenticates each call by its key instead."""

    API_PREFIX = "/api/"

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.API_PREFIX):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class AuditContextMiddleware(HistoryMiddleware):
    """pghistory's per-request audit context (who changed what), except on the API.

    The context is injected into every SQL statement of a request; API calls are made by
    keys, write no audited model, and are the hot path, so they skip it.
    """

    def __call__(self, request):
        if request.path.startswith(LoginRequiredMiddleware.API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class RequireMfaForPrivilegedRolesMiddleware:
    """Finance and admin people must enrol a second factor before anything else.

    Until they have an authenticator, every request except the MFA set-up pages,
    logout and static files is sent to TOTP activation.
    """

    # /scim/ answers bearer tokens only (revops/sso/scim.py): a session never acts there.
    ALLOWED_PREFIXES = ("/auth/", "/static/", "/health", "/scim/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.role in settings.REVOPS_MFA_REQUIRED_ROLES
            and not request.path.startswith(self.ALLOWED_PREFIXES)
            # The identity provider vouched for a second factor at this sign-in (revops/sso/signals.py).
            and not request.session.get("revops_sso_mfa")
            and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
        ):
            messages.warning(request, "Your role requires two-factor authentication. Set it up to continue.")
            url = reverse("mfa_activate_totp")
            if request.htmx:
                response = redirect(url)
                response["HX-Redirect"] = url
                return response
            return redirect(url)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """What a browser must not keep or load, on every response the app itself makes.

    * ``Cache-Control: no-store`` on anything answered to a signed-in person or an API key
      (pages, fragments, CSV exports), unless the view said otherwise: comp and revenue
      data must not linger in a shared computer's or a proxy's cache.
    * A Content-Security-Policy: scripts, styles, images and connections from this site
      only (htmx and Plotly are vendored), no plugins, no framing, forms post here only.
      Inline handlers and styles (confirm() on destructive buttons, Plotly's own styles)
      are allowed; nothing else from anywhere else is.
    """

    POLICY = "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # The header first: an API call with a key needs no session lookup to be private.
        private = "HTTP_AUTHORIZATION" in request.META or _signed_in(request)
        if private and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store, private"
        if request.path.startswith(("/auth/", "/sso/")) and not response.has_header("Content-Security-Policy"):
            # A sign-in form posts here and is redirected on to the company identity provider;
            # browsers apply form-action to that redirect, so the providers' origins are allowed.
            from revops.sso.selectors import identity_provider_origins

            origins = " ".join(identity_provider_origins())
            if origins:
                response["Content-Security-Policy"] = self.POLICY.replace(
                    "form-action 'self'", f"form-action 'self' {origins}"
                )
        response.setdefault("Content-Security-Policy", self.POLICY)
        return response


def _signed_in(request) -> bool:
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated


class RefuseNulBytesMiddleware:
    """A NUL character in the path, a query parameter or a form field is a 400 that names
    the field, before any view runs: PostgreSQL cannot store NUL in text, so it used to
    surface as a DataError (500) wherever such a value reached a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = self._nul_in(request)
        if where:
            message = f"{where} contains a NUL character (\\x00), which no field accepts; remove it and try again."
            if request.path.startswith(LoginRequiredMiddleware.API_PREFIX):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _nul_in(request) -> str | None:
        if "\x00" in request.path:
            return "The address"
        sources = [("parameter", request.GET)]
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            sources.append(("field", request.POST))
        for what, values in sources:
            for name, items in values.lists():
                if "\x00" in name or any("\x00" in item for item in items):
                    return f"The {what} {name.replace(chr(0), '')!r}"
        return None


class HtmxMessagesMiddleware:
    """Messages reach people who act through htmx too: an htmx answer (an HTML fragment,
    not a redirect) carries the pending messages out of band into the page's
    ``#messages`` region, so every save can say it was saved, however it was sent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            not getattr(request, "htmx", False)
            or response.status_code >= 300
            or not response.get("Content-Type", "").startswith("text/html")
            or getattr(response, "streaming", False)
        ):
            return response
        from django.contrib.messages import get_messages
        from django.template.loader import render_to_string

        pending = list(get_messages(request))
        if pending:
            oob = render_to_string("_messages_oob.html", {"messages": pending}, request=request)
            response.content = response.content + oob.encode()
        return response
