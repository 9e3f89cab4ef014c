"""``manage.py import_plans FILE``: a plan document (YAML or JSON), all-or-nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from comp.plans import PlansRejected, plans_import


class Command(BaseCommand):
    help = (
        "Import compensation plans (new plans and new versions) and assignments from a YAML or JSON "
        "document. Any problem: nothing is imported, every problem is printed to stderr, exit status 1. "
        "Re-importing the same document changes nothing. See docs/plans.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="YAML (.yaml, .yml) or JSON (.json) plan document, UTF-8")

    def handle(self, *args, file: str, **options):
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror or exc}") from None
        try:
            report = plans_import(data=data, filename=Path(file).name)
        except PlansRejected as exc:
            for line in exc.report.lines():
                self.stderr.write(line)
            raise CommandError(exc.message) from None
        s = report.summary
        self.stdout.write(
            self.style.SUCCESS(
                f"Plans: {s['plans_created']} created; versions: {s['versions_created']} created, "
                f"{s['versions_unchanged']} unchanged; assignments: {s['assignments_created']} created, "
                f"{s['assignments_unchanged']} unchanged."
            )
        )
