"""Login and logout through the real allauth forms, rate limits, enumeration, sign-up."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def login(client, email: str, password: str):
    return client.post(reverse("account_login"), {"login": email, "password": password})


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
