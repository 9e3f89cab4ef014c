from django.urls import path

from accounts.views import account as views
from accounts.views import billing as billing_views

app_name = "accounts"

urlpatterns = [
    path("<str:external_id>/", views.account_detail, name="account"),
    path("<str:external_id>/activities/", views.activities, name="activities"),
    path("<str:external_id>/plan/", views.plan, name="plan"),
    path("<str:external_id>/billing/", billing_views.billing, name="billing"),
]
