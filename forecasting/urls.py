"""Every page of the forecasting app, mounted once at the site root by ``revops/urls.py``."""

from django.urls import path

from forecasting.views import forecasts, planning

app_name = "forecasting"

urlpatterns = [
    # Forecasts: the fan chart by scope, the accuracy table, the account page's panel.
    path("forecasts/", forecasts.forecast_page, name="forecast"),
    path("forecasts/accuracy/", forecasts.accuracy_partial, name="accuracy"),
    path("forecasts/accounts/<str:external_id>/", forecasts.account_panel, name="account_panel"),
    # Planning (finance, leaders, admins): cohorts, deal desk, the realization waterfall.
    path("planning/cohorts/", planning.cohorts, name="cohorts"),
    path("planning/deal-desk/", planning.deal_desk, name="deal_desk"),
    path("planning/deal-desk/store/", planning.deal_desk_store, name="deal_desk_store"),
    path("planning/waterfall/", planning.waterfall, name="waterfall"),
]
