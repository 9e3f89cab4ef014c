from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from revops.errors import ApplicationError
from usage.api_keys import api_key_create
from usage.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            choices=ApiKey.Scope.values,
            help="Repeat for several scopes.",
        )
        parser.add_argument("--rate-limit", type=int, default=600, help="Requests per minute (default 600).")

    def handle(self, *args, name: str, scopes: list[str], rate_limit: int, **options):
        try:
            key, raw = api_key_create(name=name, scopes=scopes, rate_limit_per_minute=rate_limit)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"Created key '{key.name}' ({', '.join(key.scopes)}). Store it now: it is not shown again.")
        self.stdout.write(raw)
