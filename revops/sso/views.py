"""The login page's "Sign in with your company account": an email finds its provider."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from revops.sso.models import IdentityProvider
from revops.sso.services import provider_for_email


def provider_login_url(identity_provider: IdentityProvider) -> str:
    if identity_provider.kind == IdentityProvider.Kind.OIDC:
        return reverse("openid_connect_login", kwargs={"provider_id": identity_provider.slug})
    return reverse("saml_login", kwargs={"organization_slug": identity_provider.slug})


@login_not_required
@require_POST
def sso_start(request):
    if request.user.is_authenticated:
        return redirect("home")  # already signed in
    email = request.POST.get("email", "").strip()
    idp = provider_for_email(email)
    if idp is None:
        message = f"No single sign-on is set up for {email or 'that address'}; sign in with your password."
        # A refused form post (400), saying why on the page.
        context = {"message": message, "title": "No single sign-on"}
        return render(request, "revops/sso_error.html", context, status=400)
    return redirect(provider_login_url(idp))
