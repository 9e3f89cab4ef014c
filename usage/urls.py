from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("imports/", views.imports, name="imports"),
    path("imports/<int:job_id>/", views.import_job, name="import_job"),
    path("quarantine/", views.quarantine, name="quarantine"),
    path("quarantine/replay/", views.quarantine_replay_view, name="quarantine_replay"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
