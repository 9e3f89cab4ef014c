"""allauth's SAML ACS, with what it does not do: refuse a replayed response, and keep the
assertion's AuthnContextClassRef (the IdP's word on a second factor) for the login.

The response is read before allauth validates it; nothing read here is used unless
python3-saml then accepts the very same bytes (strict, signed assertion, one assertion).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from allauth.core.internal import httpkit
from allauth.socialaccount.providers.saml import views as allauth_saml
from allauth.socialaccount.sessions import LoginSession
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest
from lxml import etree

from revops.sso.adapter import refusal

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
# Longer than any assertion's validity (python3-saml refuses expired ones past its clock skew).
REPLAY_WINDOW = dt.timedelta(hours=24)


def read_response(encoded: str) -> dict:
    """The response's and assertion's IDs and the assertion's AuthnContextClassRefs."""
    try:
        root = etree.fromstring(
            base64.b64decode(encoded),
            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False),
        )
    except (binascii.Error, ValueError, etree.XMLSyntaxError):
        return {}
    assertions = root.findall(f"{{{SAML}}}Assertion")
    contexts = []
    if len(assertions) == 1:
        contexts = [el.text.strip() for el in assertions[0].iter(f"{{{SAML}}}AuthnContextClassRef") if el.text]
    return {
        "ids": [root.get("ID", "")] + [a.get("ID", "") for a in assertions],
        "authn_contexts": contexts,
    }


@login_not_required
def finish_acs(request: HttpRequest, organization_slug: str):
    acs_session = LoginSession(request, "saml_acs_session", "saml-acs-session")
    data = acs_session.store.get("request")
    if data:
        acs_request = httpkit.deserialize_request(data, HttpRequest())
        parsed = read_response(acs_request.POST.get("SAMLResponse", ""))
        for response_id in filter(None, parsed.get("ids", [])):
            if not cache.add(
                f"sso:saml-id:{organization_slug}:{response_id}", 1, timeout=REPLAY_WINDOW.total_seconds()
            ):
                acs_session.delete()
                return refusal(
                    request, "This SAML response was already used once (a replay), so revops refused it; sign in again."
                )
        request.revops_saml = parsed
    return allauth_saml.finish_acs(request, organization_slug=organization_slug)
