from django.urls import path

from integrations.views import connections as views

app_name = "integrations"

urlpatterns = [
    path("", views.connections, name="connections"),
    path("<int:connection_id>/", views.connection_detail, name="connection"),
    path("<int:connection_id>/mapping/", views.mapping, name="mapping"),
    path("<int:connection_id>/run/", views.run_now, name="run"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("accounts/<str:external_id>/crm-link/", views.account_link, name="account_link"),
]

# Stripe (integrations.billing): /data/connections/stripe/…
from integrations.views import billing as stripe_views  # noqa: E402

urlpatterns += [
    path("stripe/", stripe_views.stripe_connections, name="stripe_connections"),
    path("stripe/<int:connection_id>/", stripe_views.stripe_connection, name="stripe_connection"),
    path("stripe/<int:connection_id>/domains/", stripe_views.stripe_domain_add, name="stripe_domain_add"),
    path(
        "stripe/<int:connection_id>/domains/<int:domain_id>/remove/",
        stripe_views.stripe_domain_remove,
        name="stripe_domain_remove",
    ),
    path("stripe/<int:connection_id>/sync/", stripe_views.stripe_sync, name="stripe_sync"),
    path("stripe/runs/<int:run_id>/", stripe_views.stripe_run, name="stripe_run"),
]

# Warehouse sources (integrations.warehouse).
from integrations.views import warehouse as warehouse_views  # noqa: E402

urlpatterns += [
    path("warehouse/", warehouse_views.warehouse_sources, name="warehouse_sources"),
    path("warehouse/<int:source_id>/", warehouse_views.warehouse_source, name="warehouse_source"),
    path("warehouse/<int:source_id>/preview/", warehouse_views.warehouse_preview, name="warehouse_preview"),
    path("warehouse/<int:source_id>/pull/", warehouse_views.warehouse_pull_now, name="warehouse_pull_now"),
    path("warehouse/pulls/<int:pull_id>/", warehouse_views.warehouse_pull, name="warehouse_pull"),
]
