from django.urls import path

from exports.views import targets as views

app_name = "exports"

urlpatterns = [
    path("", views.targets, name="targets"),
    path("<int:target_id>/", views.target_detail, name="target"),
    path("<int:target_id>/test/", views.test_connection, name="test"),
    path("<int:target_id>/run/", views.run_now, name="run"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
]
