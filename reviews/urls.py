from django.urls import include, path

from reviews import views

app_name = "reviews"

urlpatterns = [
    path("", views.index, name="index"),
    path("open/", views.open_review, name="open"),
    path("analysis/", include("reviews.analysis_urls")),
    path("<str:month>/", views.detail, name="detail"),
    path("<str:month>/print/", views.print_view, name="print"),
    path("<str:month>/patterns/new/", views.pattern_form, name="pattern_new"),
    path("<str:month>/patterns/<int:pk>/", views.pattern_form, name="pattern_edit"),
    path("<str:month>/decisions/new/", views.decision_form, name="decision_new"),
    path("<str:month>/decisions/<int:pk>/", views.decision_form, name="decision_edit"),
    path("<str:month>/actions/", views.add_action, name="action_add"),
    path("<str:month>/actions/<int:pk>/status/", views.action_status, name="action_status"),
    path("<str:month>/<str:kind>/<int:pk>/remove/", views.remove, name="remove"),
    path("<str:month>/finalize/", views.finalize, name="finalize"),
]
