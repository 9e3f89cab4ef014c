from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from revops.people_import import import_people
from revops.tabular import ImportRejected


class Command(BaseCommand):
    help = (
        "Import people from a CSV file, creating or updating them by email. "
        "Columns: email,name,role[,team][,manager_email]. "
        "New people get an unusable password (password reset, or an admin sets one). "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8, comma-separated, with a header line")

    def handle(self, *args, file: str, **options):
        try:
            with open(file, "rb") as stream:
                report = import_people(stream)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror or exc}") from None
        except ImportRejected as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(exc.message) from None
        counts = report.summary
        self.stdout.write(
            self.style.SUCCESS(
                f"People: {counts['created']} created, {counts['updated']} updated, "
                f"{counts['unchanged']} unchanged; {counts['teams_created']} teams created, "
                f"{counts['team_managers_set']} team managers set."
            )
        )
