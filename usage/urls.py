"""Every page of the usage app, mounted once at the site root by ``revops/urls.py``."""

from django.urls import path

from usage.views import data, home, metrics, panels

app_name = "usage"

urlpatterns = [
    # Data in (finance, admins): imports, quarantine, API keys.
    path("data/imports/", data.imports, name="imports"),
    path("data/imports/<int:job_id>/", data.import_job, name="import_job"),
    path("data/quarantine/", data.quarantine, name="quarantine"),
    path("data/quarantine/replay/", data.quarantine_replay_view, name="quarantine_replay"),
    path("data/api-keys/", data.api_keys, name="api_keys"),
    path("data/api-keys/<int:key_id>/revoke/", data.api_key_revoke_view, name="api_key_revoke"),
    # Signals: alerts triage, the book, company metrics, alert thresholds.
    path("alerts/", metrics.alerts, name="alerts"),
    path("alerts/bulk/", metrics.alert_bulk, name="alert_bulk"),
    path("alerts/<int:alert_id>/act/", metrics.alert_action, name="alert_action"),
    path("alerts/<int:alert_id>/forms/", metrics.alert_forms, name="alert_forms"),
    path("alerts/<int:alert_id>/history/", metrics.alert_history, name="alert_history"),
    path("book/", metrics.book, name="book"),
    path("book.csv", metrics.book_csv, name="book_csv"),
    path("metrics/", metrics.company, name="company"),
    path("system/alert-settings/", metrics.alert_settings, name="alert_settings"),
    # Expansion opportunities, and usage's panels on the home page (revops.home).
    path("opportunities/", home.opportunities, name="opportunities"),
    path("home/triage/", home.home_triage, name="home_triage"),
    path("home/gates/", home.home_gates, name="home_gates"),
    path("home/opportunities/", home.home_opportunities, name="home_opportunities"),
    path("home/data/", home.home_data, name="home_data"),
    path("home/team/", home.home_team, name="home_team"),
    path("home/meters/", home.home_meters, name="home_meters"),
    # The account page's panels (fetched by accounts' page with htmx).
    path("usage/accounts/<str:external_id>/metrics/", panels.metrics_panel, name="panel_metrics"),
    path("usage/accounts/<str:external_id>/days/", panels.usage_days, name="account_days"),
    path("usage/accounts/<str:external_id>/usage-chart/", panels.usage_chart_panel, name="panel_usage_chart"),
    path("usage/accounts/<str:external_id>/alerts/", panels.alerts_panel, name="panel_alerts"),
]
