from django.urls import path

from forecasting import forecast_views

app_name = "forecasts"

urlpatterns = [
    path("", forecast_views.forecast_page, name="index"),
    path("accuracy/", forecast_views.accuracy_partial, name="accuracy"),
    path("accounts/<str:external_id>/", forecast_views.account_panel, name="account_panel"),
]
