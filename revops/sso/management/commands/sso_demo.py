"""``manage.py sso_demo``: start the local OIDC and SAML identity providers for the demo and
point revops at them ("Sign in with Demo OIDC" / "Demo SAML" on the login page). Ctrl-C stops both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from revops.models import Role
from revops.sso.local_idp.oidc import CLIENT_ID, CLIENT_SECRET
from revops.sso.local_idp.saml import LocalSamlIdP, Person, ServiceProvider, serve
from revops.sso.models import GroupMapping, IdentityProvider
from revops.sso.services import client_secret_set

DEMO_PASSWORD = "revops-demo"  # noqa: S105  (the demo's published password)
DOMAIN = "example.com"
PEOPLE = [
    {"email": f"leader@{DOMAIN}", "name": "Demo Leader", "groups": ["revops-leaders"]},
    {"email": f"finance@{DOMAIN}", "name": "Demo Finance", "groups": ["revops-finance", "amr:mfa"]},
    {"email": f"ae@{DOMAIN}", "name": "Demo AE", "groups": ["revops-sales"]},
]
MAPPINGS = {"revops-leaders": Role.LEADER, "revops-finance": Role.FINANCE, "revops-sales": Role.AE}


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--oidc-port", type=int, default=8771)
        parser.add_argument("--saml-port", type=int, default=8772)
        parser.add_argument("--site", default=settings.SITE_URL, help="revops's address (SITE_URL)")

    def handle(self, *args, oidc_port: int, saml_port: int, site: str, **options):
        site = site.rstrip("/")
        directory = Path(tempfile.mkdtemp(prefix="revops-sso-demo-"))
        people_file = directory / "people.json"
        people_file.write_text(json.dumps([{**p, "password": DEMO_PASSWORD} for p in PEOPLE]))
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["OIDC_IDP_DB"] = str(directory / "idp.sqlite3")
        oidc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "revops.sso.local_idp.oidc",
                "--port",
                str(oidc_port),
                "--redirect-uri",
                f"{site}/auth/oidc/demo-oidc/login/callback/",
                "--people",
                str(people_file),
            ],
            env=env,
        )
        saml_base = f"http://127.0.0.1:{saml_port}"
        saml = LocalSamlIdP(
            base_url=saml_base,
            people=[
                Person(p["email"], DEMO_PASSWORD, p["name"], [g for g in p["groups"] if ":" not in g]) for p in PEOPLE
            ],
            service_providers=[
                ServiceProvider(f"{site}/auth/saml/demo-saml/metadata/", f"{site}/auth/saml/demo-saml/acs/")
            ],
        )
        server = serve(saml, port=saml_port)
        self._configure(oidc_issuer=f"http://127.0.0.1:{oidc_port}", saml=saml)
        self.stdout.write(
            f"Local OIDC IdP: http://127.0.0.1:{oidc_port}   local SAML IdP: {saml_base} (signing with {saml.signer})\n"
            f"On {site}/auth/login/ use 'Sign in with Demo OIDC' or 'Demo SAML': "
            f"{', '.join(p['email'] for p in PEOPLE)}, password {DEMO_PASSWORD} (Ctrl-C stops both)."
        )
        try:
            while oidc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            oidc.terminate()
            server.shutdown()

    def _configure(self, *, oidc_issuer: str, saml: LocalSamlIdP) -> None:
        oidc_row, _ = IdentityProvider.objects.update_or_create(
            slug="demo-oidc",
            defaults={
                "name": "Demo OIDC",
                "kind": "oidc",
                "domains": [DOMAIN],
                "issuer_url": oidc_issuer,
                "client_id": CLIENT_ID,
                "is_active": True,
            },
        )
        client_secret_set(identity_provider=oidc_row, secret=CLIENT_SECRET)
        oidc_row.save()
        # One provider per domain: the demo's SAML IdP is for the same people, so it is the
        # same domain under another slug, active alongside (the clean() rule is for admins' edits).
        saml_row, _ = IdentityProvider.objects.update_or_create(
            slug="demo-saml",
            defaults={
                "name": "Demo SAML",
                "kind": "saml",
                "domains": [DOMAIN],
                "entity_id": saml.entity_id,
                "sso_url": saml.sso_url,
                "x509_certificate": saml.cert_pem,
                "is_active": True,
            },
        )
        for row in (oidc_row, saml_row):
            for group, role in MAPPINGS.items():
                GroupMapping.objects.update_or_create(identity_provider=row, group=group, defaults={"role": role})
