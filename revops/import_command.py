"""The shared shape of every `manage.py import_<kind> FILE` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from django.core.management.base import BaseCommand, CommandError

from revops.tabular import ImportRejected, ImportReport


class ImportCommand(BaseCommand):
    """Runs ``importer`` on FILE; on rejection prints every problem to stderr and exits 1."""

    noun = ""
    importer: Callable[[BinaryIO], ImportReport]

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8, comma-separated, with a header line")

    def handle(self, *args, file: str, **options):
        try:
            with open(file, "rb") as stream:
                report = type(self).importer(stream)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror or exc}") from None
        except ImportRejected as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(exc.message) from None
        counts = report.summary
        self.stdout.write(
            self.style.SUCCESS(
                f"{self.noun}: {counts['created']} created, {counts['updated']} updated, "
                f"{counts['unchanged']} unchanged{self.extra_summary(counts)}."
            )
        )

    def extra_summary(self, counts: dict) -> str:
        return ""
