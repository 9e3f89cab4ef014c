from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo company for `make run`: generated deterministically, loaded through the same
    paths as real data. It sits on top of every app and no app imports it."""

    name = "demo"
    verbose_name = "Demo company"
