"""Every page of the reviews app, mounted once at /reviews/ by ``revops/urls.py``."""

from django.urls import path

from reviews.views import analysis, home, reviews

app_name = "reviews"

urlpatterns = [
    path("", reviews.index, name="index"),
    path("open/", reviews.open_review, name="open"),
    # Reviews' panels on the home page (revops.home).
    path("home/review/", home.home_review, name="home_review"),
    path("home/releases/", home.home_releases, name="home_releases"),
    # Analysis: the product page, release attribution and pilot reports.
    path("analysis/product/", analysis.product_page, name="analysis_product"),
    path("analysis/releases/", analysis.releases, name="analysis_releases"),
    path("analysis/releases/<int:release_id>/", analysis.release_attribution, name="analysis_release"),
    path("analysis/pilots/", analysis.pilot_plans, name="analysis_pilots"),
    path("analysis/pilots/<int:plan_id>/", analysis.pilot_report, name="analysis_pilot"),
    path("<str:month>/", reviews.detail, name="detail"),
    path("<str:month>/print/", reviews.print_view, name="print"),
    path("<str:month>/patterns/new/", reviews.pattern_form, name="pattern_new"),
    path("<str:month>/patterns/<int:pk>/", reviews.pattern_form, name="pattern_edit"),
    path("<str:month>/decisions/new/", reviews.decision_form, name="decision_new"),
    path("<str:month>/decisions/<int:pk>/", reviews.decision_form, name="decision_edit"),
    path("<str:month>/actions/", reviews.add_action, name="action_add"),
    path("<str:month>/actions/<int:pk>/status/", reviews.action_status, name="action_status"),
    path("<str:month>/<str:kind>/<int:pk>/remove/", reviews.remove, name="remove"),
    path("<str:month>/finalize/", reviews.finalize, name="finalize"),
]
