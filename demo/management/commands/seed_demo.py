from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from demo import seed as stages
from demo.data import DEMO_PASSWORD, DEMO_PEOPLE
from demo.models import DemoStage
from demo.people import seed_people
from revops.models import User


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a date (YYYY-MM-DD), not '{value}'.") from None


class Command(BaseCommand):
    help = (
        "Load the deterministic demo company: people and teams, accounts, ownership, contracts, meters, "
        "releases, activities, daily usage, shared metrics and alerts, comp plans and statements, forecasts "
        "and monthly reviews. Re-running resets the demo people, finishes an interrupted seed and "
        "duplicates nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has people (but finish an interrupted demo seed).",
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed: the same seed gives the same company.")
        parser.add_argument("--accounts", type=int, default=400, help="Customer accounts (0: people only).")
        parser.add_argument("--months", type=int, default=18, help="Months of daily usage before --as-of.")
        parser.add_argument(
            "--as-of", type=_date, default=None, help="The anchor day (default: today, UTC); usage ends the day before."
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="Load the company and its metrics here, then leave comp, forecasts and reviews to the Celery "
            "worker (make run: the pages answer while the demo completes).",
        )
        parser.add_argument(
            "--forecast-history",
            action="store_true",
            help="Also queue backdated forecasts for the Celery worker (make run), so the accuracy table "
            "fills in a minute or two after start.",
        )

    def handle(
        self,
        *args,
        if_empty: bool = False,
        seed: int = 42,
        accounts: int = 400,
        months: int = 18,
        as_of: dt.date | None = None,
        background: bool = False,
        forecast_history: bool = False,
        **options,
    ):
        if accounts < 0 or months < 1:
            raise CommandError("--accounts must be 0 or more and --months at least 1.")
        if if_empty and User.objects.exists():
            unfinished = stages.stages_unfinished()
            if not unfinished:
                self.stdout.write("Database already has data; demo not loaded.")
                return
            self.stdout.write(f"Finishing the demo seed interrupted earlier: {', '.join(unfinished)}.")
            self._run(unfinished, background=background, forecast_history=forecast_history)
            return
        seed_people()
        if accounts == 0:
            self.stdout.write(
                self.style.SUCCESS(f"Demo loaded: {len(DEMO_PEOPLE)} people, password '{DEMO_PASSWORD}'.")
            )
            return
        if DemoStage.objects.exists() and not stages.stages_unfinished():
            self.stdout.write("Demo company already loaded; left as it is.")
            return
        stages.stages_plan(
            seed=seed, accounts=accounts, months=months, as_of=as_of or timezone.now().astimezone(dt.UTC).date()
        )
        self._run(stages.stages_unfinished(), background=background, forecast_history=forecast_history)

    def _run(self, names: list[str], *, background: bool, forecast_history: bool) -> None:
        here = [name for name in names if name in stages.FOREGROUND or not background]
        for name in here:
            started = time.monotonic()
            stage = stages.stage_run(name)
            if stage is not None:
                self.stdout.write(
                    self.style.SUCCESS(f"Demo {name}: {stage.summary} ({time.monotonic() - started:.1f}s).")
                )
        if "company" in here:
            people = User.objects.filter(is_active=True).count()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo loaded: {people} people ({len(DEMO_PEOPLE)} documented logins), password '{DEMO_PASSWORD}'."
                )
            )
        later = [name for name in names if name not in here]
        if later:
            with transaction.atomic():
                stages.stages_enqueue(later, forecast_history=forecast_history)
            self.stdout.write(f"The worker completes the demo ({', '.join(later)}); the home page shows its progress.")
        elif forecast_history:
            forecasts = DemoStage.objects.filter(name="forecasts").first()
            if forecasts is not None:
                self.stdout.write(stages.queue_forecast_history(stages.last_metrics_day(forecasts.as_of)))
