from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from forecasting.accuracy import backtest, format_table
from usage.management.commands.refresh_metrics import _date


class Command(BaseCommand):
    help = (
        "Replay the forecast as of every --every days from --from to --to (nothing is stored) and "
        "print WAPE and bias by horizon (7, 30, 90 days) for the model and the naive 30-day run "
        "rate, with fixed (hybrid base fee) revenue scored separately."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", type=_date, required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="last", type=_date, required=True, help="YYYY-MM-DD")
        parser.add_argument("--every", type=int, default=7, help="Days between replayed as-of days (default 7).")

    def handle(self, *args, first, last, every, **options):
        if every < 1:
            raise CommandError("--every must be at least 1")
        if first > last:
            raise CommandError(f"--from {first} is after --to {last}")
        rows = backtest(first=first, last=last, every=every)
        self.stdout.write(f"Backtest {first} … {last} every {every} days (variable = usage revenue):")
        self.stdout.write(format_table(rows))
