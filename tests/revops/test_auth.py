"""Login and logout through the real allauth forms, rate limits, enumeration, sign-up."""

from __future__ import annotations

import pytest
from django.urls import reverse

from revops.models import Role
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def login(client, email: str, password: str, **meta):
    return client.post(reverse("account_login"), {"login": email, "password": password}, **meta)


def test_login_with_email_and_password_lands_on_home(client, ae):
    response = login(client, "ae@example.test", TEST_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert home.context["user"] == ae


def test_login_email_is_case_insensitive(client, ae):
    response = login(client, "AE@Example.TEST", TEST_PASSWORD)

    assert response.status_code == 302


def test_logout_ends_the_session(client, ae):
    client.force_login(ae)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_logout_by_get_shows_a_confirmation_instead_of_logging_out(client, ae):
    client.force_login(ae)

    response = client.get(reverse("account_logout"))

    assert response.status_code == 200
    assert client.get(reverse("home")).status_code == 200


def test_wrong_password_and_unknown_email_give_the_same_answer(client, ae):
    wrong_password = login(client, "ae@example.test", "not-the-password")
    unknown_email = login(client, "nobody@example.test", "not-the-password")

    assert wrong_password.status_code == unknown_email.status_code == 200
    assert wrong_password.context["form"].errors == unknown_email.context["form"].errors


def test_failed_logins_are_rate_limited_per_email(client, ae):
    # Default: 5 failures per 5 minutes per email ("key"), counted in the shared cache.
    for _ in range(5):
        assert login(client, "ae@example.test", "wrong-password").status_code == 200

    blocked = login(client, "ae@example.test", TEST_PASSWORD)

    assert blocked.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert b"Too many failed login attempts" in blocked.content


def test_inactive_people_cannot_log_in(client, make_user):
    make_user(email="gone@example.test", is_active=False)

    response = login(client, "gone@example.test", TEST_PASSWORD)

    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert response["Location"] != reverse("home")


def test_self_sign_up_is_closed(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.test", "password1": "long-enough-pass-1", "password2": "long-enough-pass-1"},
    )

    assert b"Sign Up Closed" in response.content or response.status_code in (403, 404)
    from revops.models import User

    assert not User.objects.filter(email="new@example.test").exists()


def test_a_strangers_guesses_from_another_address_do_not_lock_a_person_out(client, ae):
    # Ten failures with made-up emails and five on the person's own email, all from one
    # address (the attacker's): the person, from their own address, still gets in.
    for n in range(10):
        login(client, f"nobody{n}@example.test", "guess", REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        login(client, "ae@example.test", "guess", REMOTE_ADDR="203.0.113.9")
    assert b"Too many failed" in login(client, "ae@example.test", TEST_PASSWORD, REMOTE_ADDR="203.0.113.9").content

    from django.test import Client

    person = Client()
    landed = login(person, "ae@example.test", TEST_PASSWORD, REMOTE_ADDR="198.51.100.7")

    assert landed.status_code == 302 and "_auth_user_id" in person.session


def test_behind_a_trusted_proxy_each_client_has_its_own_counter(client, ae, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(5):  # one client behind the proxy, guessing
        login(client, "ae@example.test", "guess", HTTP_X_FORWARDED_FOR="203.0.113.9", **via_proxy)
    # A client-made X-Forwarded-For entry on the left changes nothing: the proxy appends the real one.
    spoofed = login(client, "ae@example.test", TEST_PASSWORD, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9", **via_proxy)
    assert b"Too many failed" in spoofed.content

    from django.test import Client

    person = Client()
    landed = login(person, "ae@example.test", TEST_PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **via_proxy)

    assert landed.status_code == 302 and "_auth_user_id" in person.session


def test_an_untrusted_peer_cannot_pick_its_address_with_x_forwarded_for(rf, settings):
    from revops.adapters import client_ip

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    assert client_ip(rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.7")) == "203.0.113.9"
    assert (
        client_ip(rf.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.0.0.5")) == "198.51.100.7"
    )
    assert client_ip(rf.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="garbage")) == "10.1.1.1"


def test_the_admin_site_has_no_login_of_its_own(client, make_user, with_totp):
    """Its password-only form skipped the second factor and the failed-login limit."""
    admin = make_user(Role.ADMIN, email="root@example.test")
    with_totp(admin)

    page = client.get("/admin/login/?next=/admin/")
    posted = client.post("/admin/login/?next=/admin/", {"username": admin.email, "password": TEST_PASSWORD})

    assert page.status_code == 302 and page["Location"].startswith(reverse("account_login"))
    assert posted.status_code == 302 and posted["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    for path in ("/data/api-keys/", "/system/", "/admin/revops/user/", "/admin/mfa/authenticator/"):
        assert client.get(path).status_code == 302, path
    assert client.get("/api/v1/statements").status_code == 401


def test_an_admin_reaches_the_admin_site_only_through_the_second_factor(client, make_user, with_totp):
    admin = make_user(Role.ADMIN, email="root@example.test")
    code = with_totp(admin)

    first = login(client, "root@example.test", TEST_PASSWORD)
    assert first["Location"] == reverse("mfa_authenticate")
    assert client.get("/admin/").status_code == 302  # password alone: still not in
    client.post(reverse("mfa_authenticate"), {"code": code()})

    assert client.get("/admin/").status_code == 200
