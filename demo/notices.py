"""The home page says when the demo is still being prepared, and by what."""

from __future__ import annotations

from django.http import HttpRequest

from demo.models import DemoStage
from revops.notices import Notice


def demo_seed_notices(request: HttpRequest) -> list[Notice]:
    from demo.seed import BY_NAME

    stages = list(DemoStage.objects.only("name", "status", "error"))
    unfinished = [stage for stage in stages if stage.status != DemoStage.Status.DONE]
    if not unfinished:
        return []
    failed = [stage for stage in unfinished if stage.status == DemoStage.Status.FAILED]
    if failed:
        return [
            Notice(
                "error",
                f"Part of the demo could not be loaded: {', '.join(BY_NAME[s.name].label for s in failed)}.",
                f"{failed[0].error} — run `manage.py seed_demo --if-empty` to try again.",
            )
        ]
    done = len(stages) - len(unfinished)
    return [
        Notice(
            "info",
            "The demo company is still being prepared: "
            f"{', '.join(BY_NAME[s.name].label for s in unfinished)} will appear within a few minutes.",
            f"{done} of {len(stages)} steps done. Reload this page to see the progress.",
        )
    ]
