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
