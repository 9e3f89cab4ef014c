from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks out"

    def ready(self) -> None:
        # Hear the domain events every app emits (revops.events) and queue their deliveries.
        from webhooks import receivers  # noqa: F401
