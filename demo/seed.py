"""The demo seed, in stages.

``make run`` must answer quickly, so the seed is split: the company (people, accounts,
contracts, usage) and its shared metrics load before the web server starts; comp,
forecasts and the monthly reviews are completed by the Celery worker right after, while
the home page says the demo is still being prepared. ``manage.py seed_demo`` without
``--background`` runs every stage in the command. Each stage is idempotent and recorded
in ``DemoStage``, so an interrupted seed resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from demo.models import DemoStage

logger = logging.getLogger(__name__)

# Days before the newest forecast whose snapshots the worker makes after the seed: enough
# for the accuracy table to score 7-, 30- and 90-day horizons.
FORECAST_HISTORY_DAYS = (98, 63, 35, 14)
# A stage left "running" for longer than this lost its process (Ctrl-C, a killed worker).
STALE_RUNNING = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Stage:
    name: str
    label: str  # what it adds, for the home page ("comp statements")
    run: Callable[[DemoStage], str]  # loads the stage, returns what it did in words


def _company(stage: DemoStage) -> str:
    from demo.company import seed_company

    result = seed_company(seed=stage.seed, accounts=stage.accounts, months=stage.months, as_of=stage.as_of)
    if result is None:
        return "Demo company already loaded; left as it is."
    return (
        f"{result.people} people, {result.accounts} accounts, {result.contracts} contracts, "
        f"{result.ownerships} ownerships, {result.activities} activities, {result.events:,} usage events, "
        f"{result.rollups:,} daily rollups"
    )


def _metrics(stage: DemoStage) -> str:
    from usage.signals.services import refresh_metrics

    days = metrics_history_days(stage.as_of)
    for day in days:
        refresh_metrics(as_of=day)
    return f"shared metrics and alerts for {len(days)} days ({days[0]} … {days[-1]})"


def _comp(stage: DemoStage) -> str:
    from demo.comp import seed_comp

    months = seed_comp(stage.as_of)
    closed = len(months) - 1
    return (
        f"comp plans for {months[0].year}, {len(months)} monthly runs ({months[0]:%Y-%m} … {months[-1]:%Y-%m}), "
        f"{closed} closed month{'s' if closed != 1 else ''} approved"
    )


def _forecasts(stage: DemoStage) -> str:
    import multiprocessing

    from forecasting.services import run_forecasts, run_forecasts_parallel

    last = last_metrics_day(stage.as_of)
    if multiprocessing.current_process().daemon:
        # A Celery worker's pool process may not fork children: one process, in order.
        result = run_forecasts(as_of=last)
    else:
        result = run_forecasts_parallel(as_of=last, processes=2)
    return f"forecasts as of {last} for {result.accounts} accounts"


def _reviews(stage: DemoStage) -> str:
    from demo.reviews import seed_reviews

    reviews = seed_reviews(stage.as_of)
    return f"{len(reviews)} monthly reviews ({sum(r.is_final for r in reviews)} final)"


STAGES: tuple[Stage, ...] = (
    Stage("company", "the company and its usage", _company),
    Stage("metrics", "shared metrics and alerts", _metrics),
    Stage("comp", "comp plans and statements", _comp),
    Stage("forecasts", "forecasts", _forecasts),
    Stage("reviews", "monthly reviews", _reviews),
)
BY_NAME = {stage.name: stage for stage in STAGES}
# Loaded before the web server starts; the rest can follow in the worker.
FOREGROUND = ("company", "metrics")
# How the worker runs the rest: two chains side by side, one per worker process.
BACKGROUND_CHAINS = (("comp",), ("forecasts", "reviews"))


def stages_plan(*, seed: int, accounts: int, months: int, as_of: dt.date) -> list[DemoStage]:
    """Record the stages of a new seed (or return the recorded ones: a seed is planned once)."""
    existing = list(DemoStage.objects.all())
    if existing:
        return existing
    DemoStage.objects.bulk_create(
        DemoStage(name=stage.name, position=n, as_of=as_of, seed=seed, accounts=accounts, months=months)
        for n, stage in enumerate(STAGES)
    )
    return list(DemoStage.objects.all())


def stages_unfinished() -> list[str]:
    """Stages not done yet, with stale "running" ones (their process is gone) made pending again."""
    DemoStage.objects.filter(status=DemoStage.Status.RUNNING, started_at__lt=timezone.now() - STALE_RUNNING).update(
        status=DemoStage.Status.PENDING
    )
    return list(DemoStage.objects.exclude(status=DemoStage.Status.DONE).values_list("name", flat=True))


def stage_run(name: str) -> DemoStage | None:
    """Run one stage unless it is done or running elsewhere (a conditional update claims it).

    Returns the stage as it ended, or None when there was nothing to do. A failure is
    recorded on the stage and raised again.
    """
    claimed = DemoStage.objects.filter(
        name=name, status__in=[DemoStage.Status.PENDING, DemoStage.Status.FAILED]
    ).update(status=DemoStage.Status.RUNNING, started_at=timezone.now(), finished_at=None, error="")
    if not claimed:
        return None
    stage = DemoStage.objects.get(name=name)
    clock = time.perf_counter()
    try:
        summary = BY_NAME[name].run(stage)
    except Exception as exc:
        DemoStage.objects.filter(name=name).update(
            status=DemoStage.Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    DemoStage.objects.filter(name=name).update(
        status=DemoStage.Status.DONE, finished_at=timezone.now(), summary=summary
    )
    logger.info("demo stage %s done in %.1f s: %s", name, time.perf_counter() - clock, summary)
    stage.refresh_from_db()
    return stage


def stages_enqueue(names: list[str], *, forecast_history: bool = False) -> None:
    """Hand the unfinished stages to the worker, once this transaction commits."""
    from demo.tasks import run_demo_stages

    for chain in BACKGROUND_CHAINS:
        todo = [name for name in chain if name in names]
        if todo:
            history = forecast_history and "forecasts" in todo
            transaction.on_commit(lambda todo=todo, history=history: run_demo_stages.delay(todo, history))


def metrics_history_days(as_of: dt.date) -> list[dt.date]:
    """Month-ends of the last six months, then every day of the last four up to the
    last complete day, oldest first: charts have a history and alerts a lifecycle."""
    last = as_of - dt.timedelta(days=1)
    month_ends = []
    cursor = last.replace(day=1) - dt.timedelta(days=1)
    for _ in range(6):
        month_ends.append(cursor)
        cursor = cursor.replace(day=1) - dt.timedelta(days=1)
    recent = [last - dt.timedelta(days=k) for k in range(3, -1, -1)]
    return sorted(set(month_ends) | set(recent))


def last_metrics_day(as_of: dt.date) -> dt.date:
    return metrics_history_days(as_of)[-1]


def queue_forecast_history(last: dt.date) -> str:
    """Queue backdated forecast runs for the worker; says what it did (a missing broker is not fatal)."""
    from forecasting.tasks import run_forecasts_nightly

    days = [last - dt.timedelta(days=n) for n in FORECAST_HISTORY_DAYS]
    try:
        for day in days:
            run_forecasts_nightly.apply_async((day.isoformat(),), expires=6 * 3600)
    except Exception as exc:  # noqa: BLE001 - the demo works without them; say why they are missing
        return f"Backdated forecasts not queued ({exc.__class__.__name__}: {exc}); run manage.py run_forecasts --as-of."
    return f"Backdated forecasts queued for the worker: {', '.join(d.isoformat() for d in days)}."
