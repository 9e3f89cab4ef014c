from django.urls import path

from usage import panel_views as views

app_name = "panels"

urlpatterns = [
    path("accounts/<str:external_id>/metrics/", views.metrics_panel, name="metrics"),
    path("accounts/<str:external_id>/usage-chart/", views.usage_chart_panel, name="usage_chart"),
    path("accounts/<str:external_id>/alerts/", views.alerts_panel, name="alerts"),
]
