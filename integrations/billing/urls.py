"""Stripe's webhook endpoint, outside /data/ (Stripe posts here without a login): /hooks/stripe/<id>/."""

from django.urls import path

from integrations.views import billing as views

urlpatterns = [
    path("<int:connection_id>/", views.stripe_webhook, name="stripe_webhook"),
]
