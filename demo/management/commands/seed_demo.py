from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from demo.company import seed_company
from demo.data import DEMO_PASSWORD, DEMO_PEOPLE
from demo.people import seed_people
from demo.reviews import seed_reviews
from forecasting.services import run_forecasts_parallel
from revops.models import User
from usage.services import refresh_metrics


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a date (YYYY-MM-DD), not '{value}'.") from None


class Command(BaseCommand):
    help = (
        "Load the deterministic demo company: people and teams, accounts, ownership, contracts, meters, "
        "releases, activities and daily usage. Re-running resets the demo people and skips the company "
        "when it is already loaded (nothing is duplicated)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the database already has people.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: the same seed gives the same company.")
        parser.add_argument("--accounts", type=int, default=400, help="Customer accounts (0: people only).")
        parser.add_argument("--months", type=int, default=18, help="Months of daily usage before --as-of.")
        parser.add_argument(
            "--as-of", type=_date, default=None, help="The anchor day (default: today, UTC); usage ends the day before."
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
        forecast_history: bool = False,
        **options,
    ):
        if if_empty and User.objects.exists():
            self.stdout.write("Database already has data; demo not loaded.")
            return
        if accounts < 0 or months < 1:
            raise CommandError("--accounts must be 0 or more and --months at least 1.")
        seed_people()
        self.stdout.write(self.style.SUCCESS(f"Demo loaded: {len(DEMO_PEOPLE)} people, password '{DEMO_PASSWORD}'."))
        if accounts == 0:
            return
        started = time.monotonic()
        result = seed_company(seed=seed, accounts=accounts, months=months, as_of=as_of)
        if result is None:
            self.stdout.write("Demo company already loaded; left as it is.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo company loaded in {time.monotonic() - started:.1f}s: {result.people} people, "
                f"{result.accounts} accounts, {result.contracts} contracts, {result.ownerships} ownerships, "
                f"{result.activities} activities, {result.events} usage events, {result.rollups} daily rollups."
            )
        )
        started = time.monotonic()
        days = metrics_history_days(result.as_of)
        for day in days:
            refresh_metrics(as_of=day)
        self.stdout.write(
            self.style.SUCCESS(
                f"Shared metrics and alerts computed for {len(days)} days "
                f"({days[0]} … {days[-1]}) in {time.monotonic() - started:.1f}s."
            )
        )
        # Forecasts in two processes while this one runs comp (which needs no forecast).
        started = time.monotonic()
        comp_months: list[dt.date] = []
        forecast = run_forecasts_parallel(
            as_of=days[-1], processes=2, meanwhile=lambda: comp_months.extend(seed_comp(result.as_of))
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Forecasts as of {days[-1]} for {forecast.accounts} accounts, and comp plans from "
                f"{DEMO_PLANS.name} with {len(comp_months)} monthly runs ({comp_months[0]:%Y-%m} … "
                f"{comp_months[-1]:%Y-%m}), in {time.monotonic() - started:.1f}s."
            )
        )
        started = time.monotonic()
        reviews = seed_reviews(result.as_of)
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(reviews)} monthly reviews ({sum(r.is_final for r in reviews)} final) "
                f"in {time.monotonic() - started:.1f}s."
            )
        )
        if forecast_history:
            self.stdout.write(queue_forecast_history(days[-1]))


DEMO_PLANS = Path(__file__).resolve().parents[3] / "docs" / "examples" / "plans.yaml"
COMP_MONTHS = 12


# Days before the newest forecast whose snapshots the worker makes after start: enough for
# the accuracy table to score 7-, 30- and 90-day horizons.
FORECAST_HISTORY_DAYS = (98, 63, 35, 14)


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


def seed_comp(as_of: dt.date) -> list[dt.date]:
    """The example plans (docs/examples/plans.yaml) and comp runs for the last months up to
    the current one, oldest first, so statements have lines, holds and true-ups to show."""
    from comp.engine import run_comp
    from comp.models import PlanVersion
    from comp.periods import add_months
    from comp.plans import plans_import

    plans_import(data=DEMO_PLANS.read_bytes(), filename=DEMO_PLANS.name)
    current = as_of.replace(day=1)
    # Every month since the plans start (at most a year back), each run in its own month,
    # as the monthly job would have done.
    first = PlanVersion.objects.order_by("effective_from").values_list("effective_from", flat=True).first()
    start = max(first.replace(day=1) if first else current, add_months(current, -COMP_MONTHS))
    months = []
    while start <= current:
        months.append(start)
        start = add_months(start, 1)
    for month in months:
        run_comp(period=month, through=as_of - dt.timedelta(days=1))
    return months


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
