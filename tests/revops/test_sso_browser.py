"""Signing in through real local identity providers in Chromium: a leader through the local
OIDC IdP (allauth.idp.oidc in a second Django process), a finance person through the local
SAML IdP (pysaml2's), each landing on their home page; and refusals shown on screen."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from revops.models import Role
from revops.sso.local_idp.oidc import CLIENT_ID, CLIENT_SECRET
from revops.sso.local_idp.saml import Person
from revops.sso.models import GroupMapping, IdentityProvider
from revops.sso.services import client_secret_set
from tests.browser import screenshot
from tests.revops.sso_support import DOMAIN, saml_provider_row, start_saml_idp

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def oidc_idp(live_server, tmp_path):
    """The local OIDC IdP process, with revops registered as its client; stopped after the test."""
    people = [
        {"email": f"lead@{DOMAIN}", "password": "idp-pass", "name": "Lee Der", "groups": ["revops-leaders"]},
        {
            "email": f"wrong@{DOMAIN}",
            "password": "idp-pass",
            "name": "Wrong Aud",
            "groups": ["revops-leaders", "test:wrong-audience"],
        },
    ]
    (tmp_path / "people.json").write_text(json.dumps(people))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(OIDC_IDP_DB=str(tmp_path / "idp.sqlite3"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "revops.sso.local_idp.oidc",
            "--port",
            str(port),
            "--redirect-uri",
            f"{live_server.url}/auth/oidc/local-oidc/login/callback/",
            "--people",
            str(tmp_path / "people.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).ok:
                break
        except requests.RequestException:  # not listening yet, or its first answer is slow (a busy machine)
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the local OIDC IdP did not start:\n" + process.stdout.read().decode())
        time.sleep(0.2)
    idp = IdentityProvider(
        name="Local OIDC",
        slug="local-oidc",
        kind=IdentityProvider.Kind.OIDC,
        domains=[DOMAIN],
        issuer_url=issuer,
        client_id=CLIENT_ID,
    )
    client_secret_set(identity_provider=idp, secret=CLIENT_SECRET)
    idp.full_clean()
    idp.save()
    GroupMapping.objects.create(identity_provider=idp, group="revops-leaders", role=Role.LEADER)
    yield idp
    process.terminate()
    process.wait(timeout=10)


def _oidc_sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/auth/login/")
    page.get_by_role("button", name="Sign in with Local OIDC").click()
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/accounts/login/"))
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill("idp-pass")
    page.locator("form button[type=submit]").first.click()


def test_a_leader_signs_in_through_the_local_oidc_idp_and_lands_on_their_home(page: Page, live_server, oidc_idp):
    _oidc_sign_in(page, live_server.url, f"lead@{DOMAIN}")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("main")).to_contain_text("Leader · the shared metrics")
    screenshot(page, "sso-oidc-leader-home")


def test_an_id_token_for_another_audience_is_refused_on_screen(page: Page, live_server, oidc_idp):
    _oidc_sign_in(page, live_server.url, f"wrong@{DOMAIN}")
    expect(page.locator("#sso-error")).to_contain_text("meant for another application (wrong audience)")
    screenshot(page, "sso-oidc-wrong-audience")


@pytest.fixture
def saml_idp(live_server):
    people = [Person(email=f"fin@{DOMAIN}", password="idp-pass", name="Fin Ance", groups=["revops-finance"])]
    idp, server = start_saml_idp(sp_base=live_server.url, people=people)
    saml_provider_row(idp)
    yield idp
    server.shutdown()


def _saml_sign_in(page: Page, base_url: str, email: str, *, mfa: bool = True, mode: str = "normal") -> None:
    page.goto(f"{base_url}/auth/login/")
    page.get_by_role("button", name="Sign in with Local SAML").click()
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/sso\?"))
    page.locator("#email").fill(email)
    page.locator("#password").fill("idp-pass")
    if mfa:
        page.locator("#mfa").check()
    page.locator("#mode").select_option(mode)
    page.locator("#idp-submit").click()


def test_a_finance_person_signs_in_through_the_local_saml_idp_and_lands_on_their_home(
    page: Page, live_server, saml_idp
):
    _saml_sign_in(page, live_server.url, f"fin@{DOMAIN}")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("main")).to_contain_text("Finance / deal desk · comp plans")
    screenshot(page, "sso-saml-finance-home")


def test_an_expired_saml_assertion_is_refused_on_screen(page: Page, live_server, saml_idp):
    _saml_sign_in(page, live_server.url, f"fin@{DOMAIN}", mode="expired")
    expect(page.locator("#sso-error")).to_contain_text("has expired")


def test_an_email_of_an_sso_required_domain_goes_to_the_idp_instead_of_a_password(page: Page, live_server, saml_idp):
    IdentityProvider.objects.filter(slug="local-saml").update(sso_required=True)
    page.goto(f"{live_server.url}/auth/login/")
    form = page.locator("main form").filter(has=page.locator("input[name=login]"))
    form.locator("input[name=login]").fill(f"fin@{DOMAIN}")
    form.locator("input[name=password]").fill("whatever-they-type")
    form.locator("button[type=submit]:not([form])").click()
    # The password is never checked: allauth's "Sign in via Local SAML" step, then the IdP.
    expect(page).to_have_url(f"{live_server.url}/auth/saml/local-saml/login/")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/sso\?"))
