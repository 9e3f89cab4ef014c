from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.imports import import_accounts
from revops.tabular import ImportRejected


class Command(BaseCommand):
    help = (
        "Import accounts from a CSV file, creating or updating them by external_id. "
        "Columns: external_id,name,segment[,parent_external_id][,region][,industry][,status]. "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8, comma-separated, with a header line")

    def handle(self, *args, file: str, **options):
        try:
            with open(file, "rb") as stream:
                report = import_accounts(stream)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror or exc}") from None
        except ImportRejected as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(exc.message) from None
        counts = report.summary
        self.stdout.write(
            self.style.SUCCESS(
                f"Accounts: {counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged."
            )
        )
