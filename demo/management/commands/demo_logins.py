from __future__ import annotations

from django.core.management.base import BaseCommand

from demo.data import DEMO_PASSWORD, DEMO_PEOPLE, DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = "Print the demo logins (make run prints them once the product answers)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where revops is running.")

    def handle(self, *args, url: str, **options):
        width = max(len(p.email) for p in DEMO_PEOPLE)
        lines = [
            "",
            f"  revops is running at {url}",
            "",
            f"  Demo logins (password: {DEMO_PASSWORD})",
            *(f"    {p.email:<{width}}  {p.role}" for p in DEMO_PEOPLE),
            "",
            f"  finance and admin need a two-factor code: TOTP secret {DEMO_TOTP_SECRET},",
            "  or run: .venv/bin/python manage.py demo_totp",
            "",
            "  Press Ctrl-C to stop.",
            "",
        ]
        self.stdout.write("\n".join(lines))
