"""The site: the core's own pages, then each app's urls module, included once."""

from django.contrib import admin
from django.urls import include, path

from revops.api import api
from revops.sso import saml_views as sso_saml
from revops.views import pages, saved_views

# Django's own 400 page says only "Bad Request"; this one says which limit was exceeded.
handler400 = "revops.views.errors.bad_request"

urlpatterns = [
    path("", pages.home, name="home"),
    path("people/", pages.people, name="people"),
    path("system/", pages.system_status, name="system_status"),
    path("docs/<slug:name>/", pages.docs, name="docs"),
    path("docs/examples/<str:name>", pages.docs_example, name="docs_example"),
    path("health", pages.health_view, name="health"),
    path("favicon.ico", pages.favicon),
    path("saved-views/", saved_views.saved_view_save, name="saved_view_save"),
    path("saved-views/<int:view_id>/delete/", saved_views.saved_view_delete, name="saved_view_delete"),
    path("", include("usage.urls")),  # /data/, /alerts/, /book/, /metrics/, /usage/accounts/…
    path("accounts/", include("accounts.urls")),
    path("comp/", include("comp.urls")),  # /comp/plans/, /comp/statements/
    path("", include("forecasting.urls")),  # /forecasts/, /planning/
    path("reviews/", include("reviews.urls")),
    path("data/connections/", include("integrations.urls")),
    path("data/webhooks/", include("webhooks.urls")),
    path("data/exports/", include("exports.urls")),
    path("hooks/stripe/", include("integrations.billing.urls")),  # Stripe's webhooks: signed, no login
    # SSO: the SAML ACS's second step, replay-checked (revops/sso/saml_views.py), before allauth's own.
    path("auth/saml/<str:organization_slug>/acs/finish/", sso_saml.finish_acs, name="sso_saml_finish_acs"),
    path("", include("revops.sso.urls")),  # /sso/start/, /scim/v2/… (bearer token per identity provider)
    path("auth/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
