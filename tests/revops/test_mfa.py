"""MFA is available to everyone and required for finance and admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from revops.models import Role
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.FINANCE, Role.ADMIN])
def test_privileged_role_without_mfa_is_sent_to_set_it_up(client, make_user, role):
    user = make_user(role)
    # A real login (not force_login) so allauth knows how recently the person authenticated.
    client.post(reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD})

    response = client.get(reverse("people"))

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    # Straight after logging in, no second password prompt before the QR code.
    activate = client.get(reverse("mfa_activate_totp"))
    assert activate.status_code == 200
    assert b"secret" in activate.content.lower()


def test_htmx_request_without_mfa_is_redirected_by_header(client, make_user):
    client.force_login(make_user(Role.FINANCE))

    response = client.get(reverse("people"), headers={"HX-Request": "true"})

    assert response["HX-Redirect"] == reverse("mfa_activate_totp")


def test_other_roles_do_not_need_mfa(client, make_user):
    client.force_login(make_user(Role.AE))

    assert client.get(reverse("people")).status_code == 200


def test_finance_login_asks_for_the_code_and_accepts_a_valid_one(client, make_user, with_totp):
    finance = make_user(Role.FINANCE, email="fin@example.test")
    code = with_totp(finance)

    first = client.post(reverse("account_login"), {"login": "fin@example.test", "password": TEST_PASSWORD})
    assert first.status_code == 302
    assert first["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session

    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000" if code() != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "_auth_user_id" not in client.session

    second = client.post(reverse("mfa_authenticate"), {"code": code()})
    assert second.status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_enrolling_later_than_right_after_login_asks_for_the_password_again(client, make_user):
    user = make_user(Role.FINANCE)
    client.force_login(user)  # no authentication record: like a session older than the window

    response = client.get(reverse("mfa_activate_totp"))

    assert response["Location"].startswith(reverse("account_reauthenticate"))
