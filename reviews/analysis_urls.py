"""Analysis pages, included by ``reviews.urls`` at /reviews/analysis/ (namespace "reviews")."""

from django.urls import path

from reviews import analysis_views

urlpatterns = [
    path("releases/", analysis_views.releases, name="analysis_releases"),
    path("releases/<int:release_id>/", analysis_views.release_attribution, name="analysis_release"),
    path("pilots/", analysis_views.pilot_plans, name="analysis_pilots"),
    path("pilots/<int:plan_id>/", analysis_views.pilot_report, name="analysis_pilot"),
]
