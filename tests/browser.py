"""Browser fixtures shared by every app's Playwright tests (registered from tests/conftest.py).

The browser is Debian's Chromium at /usr/bin/chromium, driven headless through
pytest-playwright; Playwright's own browser downloads are never used. A test that needs
it skips on a machine without it and fails in CI (see ``tests.conftest.require``).

Typical use::

    @pytest.mark.browser
    def test_something(logged_in_page, ae):
        page = logged_in_page(ae)
        ...
        screenshot(page, "something")
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import require
from tests.factories import TEST_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOT_DIR = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
# Playwright waits 30 s by default; a page of ours that takes 10 s is already broken.
DEFAULT_TIMEOUT_MS = 10_000

LOGIN_PATH = "/auth/login/"
MFA_AUTHENTICATE_PATH = "/auth/2fa/authenticate/"
# The form's own submit button; allauth's MFA step adds a "Cancel" button that submits
# another (logout) form through the ``form`` attribute.
SUBMIT = "button[type=submit]:not([form])"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch options (``--headed``, ``--slowmo``) plus Debian's Chromium."""
    require(
        CHROMIUM.exists(),
        f"Chromium ({CHROMIUM})",
        install="Install it with: sudo apt-get install chromium chromium-driver (Debian/Ubuntu).",
    )
    return {
        "headless": True,  # pytest-playwright sets False itself when run with --headed
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def context(context: BrowserContext) -> BrowserContext:
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    return context


def log_in(
    page: Page,
    base_url: str,
    user,
    *,
    password: str = TEST_PASSWORD,
    totp_code: Callable[[], str] | None = None,
) -> Page:
    """Sign ``user`` in through allauth's real login form (and its TOTP form when given)."""
    page.goto(f"{base_url}{LOGIN_PATH}")
    form = page.locator("main form").filter(has=page.locator("input[name=login]"))
    form.locator("input[name=login]").fill(user.email)
    form.locator("input[name=password]").fill(password)
    form.locator(SUBMIT).click()
    if totp_code is not None:
        expect(page).to_have_url(re.compile(re.escape(MFA_AUTHENTICATE_PATH)))
        form = page.locator("main form").filter(has=page.locator("input[name=code]"))
        _wait_unless_totp_window_lasts(seconds=3)
        form.locator("input[name=code]").fill(totp_code())
        form.locator(SUBMIT).click()
    expect(page).not_to_have_url(re.compile(rf"{re.escape(LOGIN_PATH)}|{re.escape(MFA_AUTHENTICATE_PATH)}"))
    return page


def _wait_unless_totp_window_lasts(seconds: float) -> None:
    """A code made just before its 30 s window ends may be checked in the next one."""
    from allauth.mfa import app_settings

    left = app_settings.TOTP_PERIOD - time.time() % app_settings.TOTP_PERIOD
    if left < seconds:
        time.sleep(left + 0.1)


@pytest.fixture
def logged_in_page(page: Page, live_server) -> Callable[..., Page]:
    """``logged_in_page(user, totp_code=None)`` signs in through the browser and returns the page.

    ``totp_code`` is the function returned by the ``with_totp`` fixture, for people who
    have an authenticator (finance and admin must).
    """

    def sign_in(user, *, password: str = TEST_PASSWORD, totp_code: Callable[[], str] | None = None) -> Page:
        return log_in(page, live_server.url, user, password=password, totp_code=totp_code)

    return sign_in


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as test-artifacts/screenshots/<name>.png (git-ignored)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
