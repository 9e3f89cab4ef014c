from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from revops.tabular import ImportRejected
from usage.ingestion.csv_import import import_usage_file


class Command(BaseCommand):
    help = (
        "Import usage events from a CSV (columns id,account,meter,time,quantity[,source][,properties], "
        "other columns become properties). Any invalid row: nothing is imported, every problem is listed, "
        "exit status 1. Events of any age are accepted (backfills)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file: str, **options):
        try:
            result = import_usage_file(file)
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except ImportRejected as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(exc.message) from None
        from usage.ingestion.rollups import fold_all_deltas

        if result.already_imported_on:
            self.stdout.write(
                f"This exact file was already imported on {result.already_imported_on:%Y-%m-%d %H:%M} UTC: "
                f"nothing was added ({result.rows} rows)."
            )
            return
        fold_all_deltas()  # the command's caller expects rollups to be current when it returns
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.rows} rows: {result.accepted} accepted, {result.duplicates} duplicates, "
                f"{result.quarantined} quarantined (unknown account or meter)."
            )
        )
