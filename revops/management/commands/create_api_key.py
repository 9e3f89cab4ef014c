from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from revops.api_keys import api_key_create, api_key_reads
from revops.errors import ApplicationError
from revops.models import ApiKey, User


class Command(BaseCommand):
    help = (
        "Create an API key and print it once (only its hash is stored). A read key reads as a person "
        "(--as EMAIL): it sees exactly what that person may see."
    )

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
        parser.add_argument(
            "--as",
            dest="acts_as",
            metavar="EMAIL",
            default=None,
            help="Whose data a read key reads (required with --scope read), e.g. a finance person for a BI tool.",
        )
        parser.add_argument("--rate-limit", type=int, default=600, help="Requests per minute (default 600).")

    def handle(self, *args, name: str, scopes: list[str], acts_as: str | None, rate_limit: int, **options):
        person = None
        if acts_as:
            person = User.objects.filter(email__iexact=acts_as.strip()).first()
            if person is None:
                raise CommandError(f"--as {acts_as}: nobody has this email; see People for who exists.")
        elif ApiKey.Scope.READ in scopes:
            raise CommandError(
                "A read key must read as a person: it sees exactly what that person may see, nothing more. "
                "Add --as EMAIL (for an integration, the person whose view it should have, e.g. finance)."
            )
        try:
            key, raw = api_key_create(name=name, scopes=scopes, acts_as=person, rate_limit_per_minute=rate_limit)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(
            f"Created key '{key.name}' ({', '.join(key.scopes)}). It can read: {api_key_reads(key)} "
            "Store it now: it is not shown again."
        )
        self.stdout.write(raw)
