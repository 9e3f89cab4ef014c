from django.urls import path

from comp import views

app_name = "comp"

urlpatterns = [
    path("plans/", views.plans, name="plans"),
    path("plans/upload/", views.plan_upload, name="plan_upload"),
    path("plans/<int:plan_id>/", views.plan_detail, name="plan_detail"),
    path("plans/<int:plan_id>/plan.yaml", views.plan_download, name="plan_download"),
]
