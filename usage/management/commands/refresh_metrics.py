from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from revops.clock import yesterday_utc as yesterday
from usage.signals.services import refresh_metrics


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"'{value}' is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = (
        "Snapshot every account's shared metrics and evaluate alerts as of a day (default: yesterday, "
        "UTC) — the same job the nightly schedule runs. With --since, every --every days from that "
        "day up to --as-of, oldest first (alerts only move forward)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD (default: yesterday, UTC).")
        parser.add_argument("--since", type=_date, default=None, help="Backfill from this day (YYYY-MM-DD).")
        parser.add_argument("--every", type=int, default=1, help="Days between backfilled snapshots (default 1).")

    def handle(self, *args, as_of, since, every, **options):
        end = as_of or yesterday()
        if every < 1:
            raise CommandError("--every must be at least 1")
        days = [end]
        if since is not None:
            if since > end:
                raise CommandError(f"--since {since} is after --as-of {end}")
            days = [since + dt.timedelta(days=k) for k in range(0, (end - since).days + 1, every)]
            if days[-1] != end:
                days.append(end)
        for day in days:
            result = refresh_metrics(as_of=day)
            alerts = (
                f"{result.alerts_opened} alerts opened, {result.alerts_updated} updated, "
                f"{result.alerts_cleared} cleared"
                if result.alerts_evaluated
                else "alerts left alone (a later day was already evaluated)"
            )
            self.stdout.write(f"{day}: {result.accounts} accounts in {result.seconds:.1f}s; {alerts}.")
