"""A stale CSRF token sends people to the login page, also from htmx requests."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def test_htmx_post_with_a_stale_token_is_told_to_navigate_to_login(csrf_client, ae):
    csrf_client.force_login(ae)

    response = csrf_client.post(
        reverse("account_logout"),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/people/?role=ae"},
    )

    assert response.status_code == 403
    assert response["HX-Redirect"] == reverse("account_login") + "?next=%2Fpeople%2F%3Frole%3Dae"
    assert b"<html" not in response.content  # nothing to swap into the layout


def test_plain_post_with_a_stale_token_redirects_to_login(csrf_client, ae):
    csrf_client.force_login(ae)

    response = csrf_client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_every_page_sends_the_csrf_token_on_htmx_requests(client, ae):
    client.force_login(ae)

    html = client.get(reverse("people")).content.decode()

    assert 'hx-headers=\'{"X-CSRFToken": "' in html
