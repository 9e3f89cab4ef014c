"""The local OIDC IdP's claims: groups, amr, and the wrong-audience fault (see oidc.py)."""

from __future__ import annotations

from allauth.idp.oidc.adapter import DefaultOIDCAdapter


class LocalOIDCAdapter(DefaultOIDCAdapter):
    def populate_id_token(self, id_token, client, scopes, **kwargs) -> None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=id_token.get("sub")).first()
        if user is None:
            return
        names = list(user.groups.values_list("name", flat=True))
        id_token["groups"] = sorted(n for n in names if ":" not in n)
        id_token["email"] = user.email
        id_token["name"] = user.get_full_name() or user.username
        id_token["amr"] = ["pwd", "mfa"] if "amr:mfa" in names else ["pwd"]
        if "test:wrong-audience" in names:
            id_token["aud"] = "some-other-client"

    def get_claims(self, purpose, user, client, scopes, email=None, **kwargs):
        claims = super().get_claims(purpose, user, client, scopes, email=email, **kwargs)
        claims["email"] = user.email
        claims["name"] = user.get_full_name() or user.username
        claims["groups"] = sorted(n for n in user.groups.values_list("name", flat=True) if ":" not in n)
        return claims
