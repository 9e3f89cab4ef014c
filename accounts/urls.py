from django.urls import path

from accounts.views import account as views

app_name = "accounts"

urlpatterns = [
    path("<str:external_id>/", views.account_detail, name="account"),
    path("<str:external_id>/activities/", views.activities, name="activities"),
    path("<str:external_id>/plan/", views.plan, name="plan"),
]
