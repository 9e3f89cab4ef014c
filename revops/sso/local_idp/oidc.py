"""A local OpenID Connect IdP for the tests and the demo: allauth.idp.oidc in a second Django
process (``python -m revops.sso.local_idp.oidc --port 8771 --redirect-uri … --people people.json``).

People are Django users of the IdP's own SQLite database: username = email, their groups
are the ``groups`` claim; a group ``amr:mfa`` puts ``amr: ["pwd", "mfa"]`` in the id_token
(they "used a second factor"), and a group ``test:wrong-audience`` makes the IdP issue the
id_token to another audience, the fault the tests need revops to refuse.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

CLIENT_ID = "revops-local"
CLIENT_SECRET = "revops-local-secret"  # noqa: S105  (a local test IdP)


def make_key_file(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "oidc-key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def prepare(*, redirect_uris: list[str], people: list[dict]) -> None:
    """Migrate the IdP's database, register revops as a client, create the people."""
    from allauth.account.models import EmailAddress
    from allauth.idp.oidc.models import Client
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    client, _ = Client.objects.get_or_create(id=CLIENT_ID, defaults={"name": "revops"})
    client.set_secret(CLIENT_SECRET)
    client.set_redirect_uris(redirect_uris)
    client.set_scopes(["openid", "profile", "email"])
    client.set_grant_types(["authorization_code"])
    client.set_response_types(["code"])
    client.skip_consent = True
    client.type = Client.Type.CONFIDENTIAL
    client.save()
    User = get_user_model()
    for person in people:
        user, _ = User.objects.get_or_create(username=person["email"], defaults={"email": person["email"]})
        user.first_name, _, user.last_name = person.get("name", "").partition(" ")
        user.email = person["email"]
        user.set_password(person["password"])
        user.save()
        EmailAddress.objects.update_or_create(
            user=user, email=person["email"], defaults={"verified": True, "primary": True}
        )
        user.groups.set([Group.objects.get_or_create(name=g)[0] for g in person.get("groups", [])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--redirect-uri", action="append", required=True)
    parser.add_argument("--people", required=True, help="JSON file: [{email, password, name, groups}]")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="revops-oidc-idp-"))
    os.environ.setdefault("OIDC_IDP_DB", str(directory / "idp.sqlite3"))
    os.environ.setdefault("OIDC_IDP_KEY_FILE", str(make_key_file(directory)))
    os.environ["DJANGO_SETTINGS_MODULE"] = "revops.sso.local_idp.oidc_settings"
    import django

    django.setup()
    prepare(redirect_uris=args.redirect_uri, people=json.loads(Path(args.people).read_text()))
    from django.core.wsgi import get_wsgi_application

    from revops.sso.local_idp.saml import serve_forever

    print(f"local OIDC IdP on http://127.0.0.1:{args.port} (client {CLIENT_ID})", flush=True)
    serve_forever(get_wsgi_application(), port=args.port)


if __name__ == "__main__":
    main()
