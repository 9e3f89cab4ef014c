"""The SSO rules as functions: the IdP's second factor and roles from groups."""

from __future__ import annotations

import pytest

from revops.models import Role
from revops.sso.models import GroupMapping, IdentityProvider
from revops.sso.services import NO_GROUP_MESSAGE, SsoRefused, grant_for_groups, mfa_satisfied


@pytest.fixture
def oidc(db):
    return IdentityProvider.objects.create(
        name="Okta",
        slug="okta",
        kind="oidc",
        domains=["example.test"],
        issuer_url="https://o.test",
        client_id="c",
        mfa_acr_values=["urn:okta:loa:2fa:any"],
    )


@pytest.mark.parametrize(
    ("amr", "acr", "second_factor"),
    [
        (["pwd"], "", False),
        (["pwd", "mfa"], "", True),
        (["hwk"], "", True),
        ([], "urn:okta:loa:1fa:any", False),
        ([], "urn:okta:loa:2fa:any", True),
    ],
)
def test_oidc_amr_or_configured_acr_is_the_second_factor(oidc, amr, acr, second_factor):
    assert mfa_satisfied(identity_provider=oidc, amr=amr, acr=acr) is second_factor


def test_saml_authn_context_counts_only_when_configured(db):
    saml = IdentityProvider(kind="saml")
    password = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    assert mfa_satisfied(identity_provider=saml, authn_contexts=[password]) is False
    assert mfa_satisfied(identity_provider=saml, authn_contexts=["https://refeds.org/profile/mfa"]) is True


def test_the_role_with_most_reach_wins_and_unknown_groups_give_nothing(oidc):
    GroupMapping.objects.create(identity_provider=oidc, group="Sales", role=Role.AE)
    GroupMapping.objects.create(identity_provider=oidc, group="Leaders", role=Role.LEADER)
    assert grant_for_groups(identity_provider=oidc, groups=["Sales", "Leaders", "Everyone"]).role == Role.LEADER
    with pytest.raises(SsoRefused, match=NO_GROUP_MESSAGE.replace(".", r"\.")):
        grant_for_groups(identity_provider=oidc, groups=["Everyone", "sales"])  # names match exactly
