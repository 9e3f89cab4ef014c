from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from comp.engine import run_comp
from comp.periods import month_end, parse_period


class Command(BaseCommand):
    help = (
        "Compute every comp assignment for a month, as of its last day, and append the "
        "differences to the ledger (re-running adds nothing). The monthly job runs the same code."
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="The month, YYYY-MM.")

    def handle(self, *args, period, **options):
        try:
            month = parse_period(period)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # The month still running is computed through yesterday (UTC), not its last day.
        yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
        result = run_comp(period=month, through=yesterday if month_end(month) > yesterday else None)
        if result.skipped:
            self.stdout.write(f"{period}: nothing to do — {result.skipped}")
        else:
            self.stdout.write(f"{period}: {result.targets} amounts computed, {result.lines_added} ledger lines added.")
