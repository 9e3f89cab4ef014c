from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from forecasting.services import ForecastError, run_forecasts, run_forecasts_parallel
from revops.clock import yesterday_utc as yesterday
from usage.management.commands.refresh_metrics import _date


class Command(BaseCommand):
    help = (
        "Forecast every account's daily revenue as of a day (default: yesterday, UTC) and store the "
        "snapshots, inline — the job the nightly schedule fans out to shards. Accounts already "
        "forecast that day are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD (default: yesterday, UTC).")
        parser.add_argument("--shards", type=int, default=1, help="Run the shards one after another (default 1).")
        parser.add_argument(
            "--processes", type=int, default=1, help="Run that many shards at once in parallel processes (default 1)."
        )

    def handle(self, *args, as_of, shards, processes=1, **options):
        day = as_of or yesterday()
        if processes > 1:
            result = run_forecasts_parallel(as_of=day, processes=processes)
            methods = ", ".join(f"{k} {v}" for k, v in sorted(result.methods.items())) or "none new"
            self.stdout.write(
                f"{day} in {processes} processes: {result.accounts} forecast, {result.skipped} skipped "
                f"in {result.seconds:.1f}s ({methods})."
            )
            return
        try:
            for shard in range(shards):
                result = run_forecasts(as_of=day, shard=shard if shards > 1 else None, shards=shards)
                methods = ", ".join(f"{k} {v}" for k, v in sorted(result.methods.items())) or "none new"
                self.stdout.write(
                    f"{day} shard {shard}/{shards}: {result.accounts} forecast, {result.skipped} skipped "
                    f"in {result.seconds:.1f}s ({methods})."
                )
        except ForecastError as exc:
            raise CommandError(str(exc)) from exc
