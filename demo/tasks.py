from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=1200, time_limit=1260, expires=24 * 3600)
def run_demo_stages(names: list[str], forecast_history: bool = False) -> list[str]:
    """Complete the demo seed after `make run` has started serving: the stages in order.

    Each stage claims itself, so a redelivered task skips what is done or running.
    """
    from demo.models import DemoStage
    from demo.seed import last_metrics_day, queue_forecast_history, stage_run

    done = []
    for name in names:
        stage = stage_run(name)
        if stage is not None:
            done.append(name)
    if forecast_history and DemoStage.objects.filter(name="forecasts", status=DemoStage.Status.DONE).exists():
        queue_forecast_history(last_metrics_day(DemoStage.objects.get(name="forecasts").as_of))
    return done
