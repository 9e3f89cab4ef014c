from django.urls import path

from forecasting import planning_views

app_name = "planning"

urlpatterns = [
    path("cohorts/", planning_views.cohorts, name="cohorts"),
    path("deal-desk/", planning_views.deal_desk, name="deal_desk"),
    path("deal-desk/store/", planning_views.deal_desk_store, name="deal_desk_store"),
    path("waterfall/", planning_views.waterfall, name="waterfall"),
]
