from __future__ import annotations

from django.core.management.base import BaseCommand

from usage.ingestion.rollups import raw_event_window, rebuild_from_events


class Command(BaseCommand):
    help = (
        "Recompute DailyRollup from raw events for every day that still has them (the retention "
        "window); older rollups are kept as they are."
    )

    def handle(self, *args, **options):
        window = raw_event_window()
        rows = rebuild_from_events()
        if window is None:
            self.stdout.write("No raw events: nothing to rebuild.")
        else:
            self.stdout.write(f"Rebuilt {rows} rollup rows from {window[0]} to {window[1]}.")
