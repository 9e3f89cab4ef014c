from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from revops.clock import day_in_range
from revops.tabular import ImportRejected
from usage.ingestion.csv_import import import_usage_file
from usage.ingestion.services import usage_complete_from_declare


class Command(BaseCommand):
    help = (
        "Import usage events from a CSV (columns id,account,meter,time,quantity[,source][,properties], "
        "other columns become properties). Any invalid row: nothing is imported, every problem is listed, "
        "exit status 1. Events of any age are accepted (backfills)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--complete-from",
            metavar="YYYY-MM-DD",
            help="Declare that usage is complete from this day on (every billable event since is in this file "
            "or already stored): contracts starting on or after it get a known time to first billable event.",
        )

    def handle(self, *args, file: str, complete_from: str | None = None, **options):
        day = None
        if complete_from:
            try:
                day = dt.date.fromisoformat(complete_from)
            except ValueError:
                raise CommandError(f"--complete-from: '{complete_from}' is not a date (YYYY-MM-DD)") from None
            if not day_in_range(day):
                raise CommandError(f"--complete-from: {day} is outside the days revops covers")
        try:
            result = import_usage_file(file)
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except ImportRejected as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(exc.message) from None
        from usage.ingestion.rollups import fold_all_deltas

        if result.already_imported_on and day is not None:
            usage_complete_from_declare(day=day, source=f"import_usage {Path(file).name}")
        if result.already_imported_on:
            self.stdout.write(
                f"This exact file was already imported on {result.already_imported_on:%Y-%m-%d %H:%M} UTC: "
                f"nothing was added ({result.rows} rows)."
            )
            return
        fold_all_deltas()  # the command's caller expects rollups to be current when it returns
        if day is not None:
            history = usage_complete_from_declare(day=day, source=f"import_usage {Path(file).name}")
            self.stdout.write(f"Usage is declared complete from {history.complete_from}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.rows} rows: {result.accepted} accepted, {result.duplicates} duplicates, "
                f"{result.quarantined} quarantined (unknown account or meter)."
            )
        )
