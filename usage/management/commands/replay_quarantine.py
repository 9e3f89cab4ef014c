from __future__ import annotations

from django.core.management.base import BaseCommand

from usage.ingestion.services import quarantine_replay


class Command(BaseCommand):
    help = "Ingest quarantined events whose account and meter now exist (each exactly once)."

    def handle(self, *args, **options):
        result = quarantine_replay()
        self.stdout.write(
            f"{result.replayed} replayed, {result.duplicates} were already stored, "
            f"{result.still_unknown} still have an unknown account or meter."
        )
