"""The local identity providers the SSO tests start, and helpers that walk their flows."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlparse

import requests

from revops.models import Role
from revops.sso.local_idp.saml import LocalSamlIdP, Person, ServiceProvider, serve
from revops.sso.models import GroupMapping, IdentityProvider

SAML_SLUG = "local-saml"
DOMAIN = "example.test"
# python3-saml builds the URLs it checks from the Host header, which the test client omits.
HOST = "testserver"


class _Holder:
    """The WSGI app is made once the port is known (the IdP's URLs contain it)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def start_saml_idp(*, sp_base: str, people: list[Person], use_xmlsec_binary: bool | None = None):
    holder = _Holder()
    server = serve(holder)
    base = f"http://127.0.0.1:{server.server_port}"
    sp = ServiceProvider(
        entity_id=f"{sp_base}/auth/saml/{SAML_SLUG}/metadata/", acs_url=f"{sp_base}/auth/saml/{SAML_SLUG}/acs/"
    )
    holder.app = LocalSamlIdP(base_url=base, people=people, service_providers=[sp], use_xmlsec_binary=use_xmlsec_binary)
    return holder.app, server


def saml_provider_row(idp: LocalSamlIdP, *, team=None, **extra) -> IdentityProvider:
    row = IdentityProvider(
        name="Local SAML",
        slug=SAML_SLUG,
        kind=IdentityProvider.Kind.SAML,
        domains=[DOMAIN],
        entity_id=idp.entity_id,
        sso_url=idp.sso_url,
        x509_certificate=idp.cert_pem,
        **extra,
    )
    row.full_clean()
    row.save()
    GroupMapping.objects.create(identity_provider=row, group="revops-finance", role=Role.FINANCE, team=team)
    GroupMapping.objects.create(identity_provider=row, group="revops-leaders", role=Role.LEADER)
    return row


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    action = unescape(re.search(r'<form[^>]*action="([^"]*)"', page).group(1))
    fields = {
        unescape(name): unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    return action, fields


def saml_sign_in(
    client,
    *,
    email: str,
    password: str = "idp-pass",  # noqa: S107
    mode: str = "normal",
    mfa: bool = False,
):
    """SP-initiated SAML login with Django's test client for revops and requests for the IdP.

    Returns (the final revops response, the SAMLResponse the IdP posted)."""
    started = client.post(f"/auth/saml/{SAML_SLUG}/login/", HTTP_HOST=HOST)
    assert started.status_code == 302, started.content[:500]
    idp_url = started["Location"]
    login_page = requests.get(idp_url, timeout=10)
    action, fields = form_fields(login_page.text)
    origin = "{0.scheme}://{0.netloc}".format(urlparse(idp_url))
    posted = requests.post(
        origin + action,
        data={**fields, "email": email, "password": password, "mode": mode, "mfa": "1" if mfa else ""},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    acs, answer = form_fields(posted.text)
    return post_saml_response(client, acs, answer), answer["SAMLResponse"]


def post_saml_response(client, acs: str, answer: dict):
    """What the browser does with the IdP's auto-posting form: POST to the ACS, follow to finish."""
    path = urlparse(acs).path
    posted = client.post(path, answer, HTTP_HOST=HOST)
    assert posted.status_code == 302, posted.content[:300]
    return client.get(posted["Location"], HTTP_HOST=HOST)
