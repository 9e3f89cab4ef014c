from __future__ import annotations

import pytest
from django.core.management import call_command

from demo.data import DEMO_PASSWORD, DEMO_PEOPLE
from demo.people import current_demo_totp_code
from revops.models import Role, User

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_one_person_per_role_with_the_documented_password():
    call_command("seed_demo", "--accounts", "0")

    assert set(User.objects.values_list("role", flat=True)) == set(Role.values)
    for spec in DEMO_PEOPLE:
        assert User.objects.get(email=spec.email).check_password(DEMO_PASSWORD)


def test_seed_demo_twice_changes_nothing():
    call_command("seed_demo", "--accounts", "0")
    before = list(User.objects.order_by("email").values("email", "role", "team__name"))

    call_command("seed_demo", "--accounts", "0")

    assert list(User.objects.order_by("email").values("email", "role", "team__name")) == before


def test_seed_demo_if_empty_leaves_an_existing_database_alone(make_user):
    make_user(Role.AE)

    call_command("seed_demo", "--if-empty", "--accounts", "0")

    assert User.objects.count() == 1


def test_demo_finance_can_log_in_with_the_published_two_factor_code(client):
    call_command("seed_demo", "--accounts", "0")

    client.post("/auth/login/", {"login": "finance@example.com", "password": DEMO_PASSWORD})
    client.post("/auth/2fa/authenticate/", {"code": current_demo_totp_code()})

    assert client.get("/").status_code == 200
    assert b"Finance / deal desk" in client.get("/").content
