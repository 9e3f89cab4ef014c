from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from comp.engine import run_comp
from comp.periods import parse_period


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
        result = run_comp(period=month)
        if result.skipped:
            self.stdout.write(f"{period}: nothing to do — {result.skipped}")
        else:
            self.stdout.write(f"{period}: {result.targets} amounts computed, {result.lines_added} ledger lines added.")
