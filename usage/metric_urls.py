from django.urls import path

from usage import metric_views as views

app_name = "metrics"

urlpatterns = [
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/bulk/", views.alert_bulk, name="alert_bulk"),
    path("alerts/<int:alert_id>/act/", views.alert_action, name="alert_action"),
    path("alerts/<int:alert_id>/forms/", views.alert_forms, name="alert_forms"),
    path("alerts/<int:alert_id>/history/", views.alert_history, name="alert_history"),
    path("book/", views.book, name="book"),
    path("book.csv", views.book_csv, name="book_csv"),
    path("metrics/", views.company, name="company"),
    path("system/alert-settings/", views.alert_settings, name="alert_settings"),
]
