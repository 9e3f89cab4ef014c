from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo company for `make run`: generated deterministically, loaded through the same
    paths as real data. It sits on top of every app and no app imports it."""

    name = "demo"
    verbose_name = "Demo company"

    def ready(self) -> None:
        from demo.notices import demo_seed_notices
        from revops.notices import notice_provider_register

        notice_provider_register(demo_seed_notices)
