"""SAML sign-in against pysaml2's IdP running locally (revops/sso/local_idp/saml.py).

revops is driven with Django's test client (the SP side), the IdP over real HTTP with
requests; the browser walk through both is in test_sso_browser.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from revops.models import Role
from revops.sso.local_idp.saml import Person
from tests.factories import TeamFactory, UserFactory
from tests.revops.sso_support import DOMAIN, post_saml_response, saml_provider_row, saml_sign_in, start_saml_idp

User = get_user_model()
SP = "http://testserver"


@pytest.fixture
def saml_idp(db):
    people = [
        Person(email=f"fin@{DOMAIN}", password="idp-pass", name="Fin Ance", groups=["revops-finance", "Everyone"]),
        Person(email=f"lead@{DOMAIN}", password="idp-pass", name="Lee Der", groups=["revops-leaders"]),
        Person(email=f"nogroup@{DOMAIN}", password="idp-pass", name="No Group", groups=["Everyone"]),
        Person(email="outsider@elsewhere.test", password="idp-pass", name="Out Sider", groups=["revops-finance"]),
    ]
    idp, server = start_saml_idp(sp_base=SP, people=people)
    yield idp
    server.shutdown()


@pytest.fixture
def provider(saml_idp):
    return saml_provider_row(saml_idp, team=TeamFactory(name="Finance"))


def _signed_in_as(client):
    return client.get("/").wsgi_request.user


def test_finance_person_is_created_with_the_role_and_team_their_groups_map_to(client, provider):
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mfa=True)
    assert response.status_code == 302 and response["Location"] == "/"
    person = User.objects.get(email=f"fin@{DOMAIN}")
    assert (person.role, person.team.name, person.name, person.has_usable_password()) == (
        Role.FINANCE,
        "Finance",
        "Fin Ance",
        False,
    )
    home = client.get("/")
    assert home.status_code == 200  # the IdP's MFA context stood in for TOTP: no redirect to set it up
    assert client.session["revops_sso_mfa"] is True


def test_finance_sign_in_without_the_idps_second_factor_still_has_to_set_up_totp(client, provider):
    saml_sign_in(client, email=f"fin@{DOMAIN}", mfa=False)
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/auth/2fa/totp/activate/"


def test_role_comes_from_the_groups_every_sign_in_whatever_it_was(client, provider):
    UserFactory(email=f"lead@{DOMAIN}", role=Role.AE)
    saml_sign_in(client, email=f"lead@{DOMAIN}")
    assert User.objects.get(email=f"lead@{DOMAIN}").role == Role.LEADER
    assert _signed_in_as(client).email == f"lead@{DOMAIN}"


def _refusal(response) -> str:
    assert response.status_code in (400, 403), (response.status_code, response.content[:300])
    return response.content.decode()


def test_no_mapped_group_is_refused_saying_so(client, provider):
    response, _ = saml_sign_in(client, email=f"nogroup@{DOMAIN}")
    assert (
        "your identity provider gave no group that revops maps to a role; ask your admin" in _refusal(response).lower()
    )
    assert not User.objects.filter(email=f"nogroup@{DOMAIN}").exists()


def test_unknown_email_domain_is_refused(client, provider):
    response, _ = saml_sign_in(client, email="outsider@elsewhere.test")
    assert "outsider@elsewhere.test is not in a domain Local SAML signs in for (example.test)" in _refusal(response)
    assert not _signed_in_as(client).is_authenticated


def test_deactivated_person_is_refused(client, provider):
    UserFactory(email=f"fin@{DOMAIN}", role=Role.FINANCE, is_active=False)
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mfa=True)
    assert f"The revops account for fin@{DOMAIN} is deactivated; ask your admin." in _refusal(response)


def test_expired_assertion_is_refused(client, provider):
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mode="expired")
    assert "has expired" in _refusal(response)
    assert not User.objects.filter(email=f"fin@{DOMAIN}").exists()


def test_assertion_for_another_audience_is_refused(client, provider):
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mode="wrong-audience")
    assert "meant for another application (wrong audience)" in _refusal(response)


def test_unsigned_assertion_is_refused(client, provider):
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mode="unsigned")
    assert "was not signed" in _refusal(response)


def test_replayed_response_is_refused(client, provider, saml_idp):
    response, answer = saml_sign_in(client, email=f"lead@{DOMAIN}")
    assert response.status_code == 302
    client.logout()
    replay = post_saml_response(client, f"{SP}/auth/saml/local-saml/acs/", {"SAMLResponse": answer, "RelayState": ""})
    assert "already used once (a replay)" in _refusal(replay)
    assert not _signed_in_as(client).is_authenticated


def test_the_fallback_signer_without_the_xmlsec1_binary_is_accepted(client, db):
    """A newcomer's machine has no xmlsec1: the IdP signs with python-xmlsec and revops accepts it."""
    people = [Person(email=f"lead@{DOMAIN}", password="idp-pass", name="Lee Der", groups=["revops-leaders"])]
    idp, server = start_saml_idp(sp_base=SP, people=people, use_xmlsec_binary=False)
    try:
        assert idp.signer == "python-xmlsec"
        saml_provider_row(idp)
        response, _ = saml_sign_in(client, email=f"lead@{DOMAIN}")
        assert response.status_code == 302 and _signed_in_as(client).email == f"lead@{DOMAIN}"
    finally:
        server.shutdown()


def test_an_enrolled_finance_person_is_not_asked_for_totp_when_the_idp_did_mfa(client, provider, with_totp):
    with_totp(UserFactory(email=f"fin@{DOMAIN}", role=Role.FINANCE))
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mfa=True)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_an_enrolled_finance_person_is_asked_for_totp_when_the_idp_did_not(client, provider, with_totp):
    with_totp(UserFactory(email=f"fin@{DOMAIN}", role=Role.FINANCE))
    response, _ = saml_sign_in(client, email=f"fin@{DOMAIN}", mfa=False)
    assert response.status_code == 302 and response["Location"] == "/auth/2fa/authenticate/"
    assert not _signed_in_as(client).is_authenticated


def test_a_password_login_never_inherits_an_idp_second_factor(client, provider):
    """The flag is written at login only for SSO logins, and a password login clears it."""
    person = UserFactory(email="pw@other.test", role=Role.FINANCE)
    session = client.session
    session["revops_sso_mfa"] = True
    session.save()
    from tests.factories import TEST_PASSWORD

    client.post("/auth/login/", {"login": person.email, "password": TEST_PASSWORD})
    assert "revops_sso_mfa" not in client.session
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/auth/2fa/totp/activate/"


def test_password_login_of_an_sso_required_domain_goes_to_the_idp(client, provider):
    provider.sso_required = True
    provider.save()
    UserFactory(email=f"fin@{DOMAIN}", role=Role.FINANCE)
    from tests.factories import TEST_PASSWORD

    response = client.post("/auth/login/", {"login": f"fin@{DOMAIN}", "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/auth/saml/local-saml/login/"
    assert not _signed_in_as(client).is_authenticated


def test_admin_validation_refuses_a_provider_without_domains_or_certificate(db):
    from django.core.exceptions import ValidationError

    from revops.sso.models import IdentityProvider

    row = IdentityProvider(name="Bad", slug="bad", kind="saml", domains=["not a domain"], x509_certificate="junk")
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert refused.value.message_dict == {
        "domains": ["'not a domain' is not an email domain (example.com)."],
        "entity_id": ["Needed for a SAML provider unless a metadata URL is given."],
        "sso_url": ["Needed for a SAML provider unless a metadata URL is given."],
        "x509_certificate": ["Paste the PEM certificate (-----BEGIN CERTIFICATE----- …)."],
    }
