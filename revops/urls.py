from django.contrib import admin
from django.urls import include, path

from revops import views
from revops.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("people/", views.people, name="people"),
    path("system/", views.system_status, name="system_status"),
    path("docs/<slug:name>/", views.docs, name="docs"),
    path("data/", include("usage.urls")),
    path("", include("usage.metric_urls")),
    path("accounts/", include("accounts.urls")),
    path("comp/statements/", include("comp.statement_urls")),
    path("comp/", include("comp.urls")),
    path("usage/", include("usage.panel_urls")),
    path("planning/", include("forecasting.planning_urls")),
    path("forecasts/", include("forecasting.forecast_urls")),
    path("reviews/", include("reviews.urls")),
    path("health", views.health_view, name="health"),
    path("favicon.ico", views.favicon),
    path("auth/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
