"""Fixtures shared by every app's tests.

Real parts only: PostgreSQL (the machine's or the embedded one), Redis, a Celery worker
process and headless Chromium. When one is missing a test skips on a developer's
machine and FAILS in CI (CI=true), so a green CI run really exercised them.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.core.cache import cache

from revops.models import Role
from tests.factories import TeamFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to
# run where a loop is running unless told it is fine (the live server is another thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a real part the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true) but is not available.", pytrace=False)
    pytest.skip(f"{what} is not available on this machine.")


def tcp_reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    require(bool(url) and tcp_reachable(url), f"Redis (REDIS_URL={url or 'unset'})")
    return url


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Rate-limit counters and TOTP replay markers must not leak between tests."""
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        cache.clear()
    yield


@pytest.fixture
def team(db):
    return TeamFactory(name="Sales East")


@pytest.fixture
def make_user(db):
    def make(role: str = Role.AE, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def ae(make_user, team):
    return make_user(Role.AE, team=team, name="Avery Exec", email="ae@example.test")


@pytest.fixture
def with_totp():
    """Give a user a TOTP authenticator; returns a function that makes a valid code."""
    from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value

    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

    def activate(user):
        TOTP.activate(user, secret)

        def code() -> str:
            import time

            return format_hotp_value(hotp_value(secret, int(time.time()) // 30))

        return code

    return activate
