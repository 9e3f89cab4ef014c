from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from demo.data import DEMO_PEOPLE
from demo.people import current_demo_totp_code


class Command(BaseCommand):
    help = "Print the current two-factor code of the demo finance and admin people (demo data only)."

    def handle(self, *args, **options):
        from allauth.mfa.models import Authenticator
        from allauth.mfa.totp.internal.auth import validate_totp_code
        from allauth.mfa.utils import decrypt

        emails = [p.email for p in DEMO_PEOPLE]
        demo = Authenticator.objects.filter(user__email__in=emails, type=Authenticator.Type.TOTP)
        code = current_demo_totp_code()
        # Only answer for authenticators that really use the published demo secret.
        if not any(validate_totp_code(decrypt(a.data["secret"]), code) for a in demo):
            raise CommandError("No demo authenticator uses the published demo secret here.")
        self.stdout.write(code)
