"""The product through headless Chromium: allauth's login inside our layout, role landing
pages, and the htmx people filters. Screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from revops.models import Role
from tests.browser import SUBMIT, screenshot
from tests.factories import TEST_PASSWORD, TeamFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLE_LABELS = dict(Role.choices)


def _login_error(page: Page) -> str:
    errors = page.locator("main form .errorlist")
    expect(errors).to_have_count(1)
    return errors.inner_text().strip()


def test_ae_logs_in_sees_their_home_and_logs_out(page: Page, live_server, ae):
    page.goto(live_server.url + "/")
    # Anonymous visitors are sent to allauth's login page, rendered in our layout.
    expect(page).to_have_url(re.compile(r"/auth/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    expect(page.locator("header.topbar .brand")).to_be_visible()
    screenshot(page, "login")

    form = page.locator("main form")
    form.locator("input[name=login]").fill(ae.email)
    form.locator("input[name=password]").fill(TEST_PASSWORD)
    form.locator(SUBMIT).click()

    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator("h1")).to_have_text("Hello, Avery")
    who = page.locator("header .who")
    expect(who.locator(".who-name")).to_have_text("Avery Exec")
    expect(who.locator(".badge")).to_have_text("Account executive")
    expect(page.get_by_text("Account executive · your book of accounts")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(
        ["Home", "Book", "Opportunities", "Statements", "Forecast", "Reviews", "People"]
    )
    expect(nav.get_by_role("link", name="Home")).to_have_attribute("aria-current", "page")

    who.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/auth/login/$"))
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    expect(page.locator("header .who")).to_have_count(0)
    # The session is really gone: the home page asks for a login again.
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/auth/login/\?next=/$"))


def test_people_filters_swap_the_table_with_htmx(logged_in_page, make_user):
    east, west = TeamFactory(name="East"), TeamFactory(name="West")
    leader = make_user(Role.LEADER, name="Lee Leader", email="leader@example.test")
    make_user(Role.AE, name="Eve East", team=east)
    make_user(Role.CSM, name="Cody Success", team=east)
    make_user(Role.AE, name="Will West", team=west)

    page = logged_in_page(leader)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    expect(page.locator("h1")).to_have_text("People")
    # The vendored htmx really loaded (served from our static files, not a CDN).
    page.wait_for_function("() => window.htmx !== undefined")
    assert page.evaluate("() => window.htmx.version").startswith("2.")
    rows = page.locator("#people-table tbody tr")
    expect(rows).to_have_count(4)
    screenshot(page, "people")

    # A marker on window survives only if the page is not reloaded.
    page.evaluate("() => { window.__noReload = true; }")
    with page.expect_response(lambda r: "/people/?" in r.url and r.request.headers.get("hx-request") == "true"):
        page.get_by_label("Search").fill("west")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Will West")
    expect(page).to_have_url(re.compile(r"/people/\?q=west&role=&team=&sort=name$"))

    page.get_by_label("Search").fill("")
    page.get_by_label("Role").select_option(label="Account executive")
    expect(rows).to_have_count(2)
    expect(rows.locator("td:first-child")).to_have_text(["Eve East", "Will West"])
    expect(page).to_have_url(re.compile(r"/people/\?q=&role=ae&team=&sort=name$"))

    page.get_by_label("Team").select_option(label="East")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Eve East")
    expect(page).to_have_url(re.compile(rf"/people/\?q=&role=ae&team={east.pk}&sort=name$"))

    assert page.evaluate("() => window.__noReload") is True
    # The layout was not swapped into itself.
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("h1")).to_have_count(1)


def test_wrong_password_and_unknown_email_get_the_same_error(page: Page, live_server, ae):
    log_in_url = live_server.url + "/auth/login/"
    page.goto(log_in_url)
    form = page.locator("main form")
    form.locator("input[name=login]").fill(ae.email)
    form.locator("input[name=password]").fill("not-the-password")
    form.locator(SUBMIT).click()
    expect(page).to_have_url(log_in_url)
    wrong_password = _login_error(page)
    assert "not correct" in wrong_password
    screenshot(page, "login-error")

    form.locator("input[name=login]").fill("nobody@example.test")
    form.locator("input[name=password]").fill("not-the-password")
    form.locator(SUBMIT).click()
    expect(page).to_have_url(log_in_url)
    assert _login_error(page) == wrong_password
    # Nothing was let in.
    expect(page.locator("header .who")).to_have_count(0)


LANDING = {
    Role.AE: "Account executive · your book of accounts",
    Role.CSM: "Customer success · burn-rate and adoption alerts",
    Role.LEADER: "Leader · the shared metrics",
    Role.FINANCE: "Finance / deal desk · comp plans",
    Role.PRODUCT: "Product · which features and releases",
    Role.ADMIN: "Administrator · people, access",
}


@pytest.mark.parametrize("role", list(LANDING))
def test_each_role_lands_on_its_home_page(logged_in_page, make_user, team, with_totp, role):
    user = make_user(role, team=team, name=f"Pat {role.title()}", email=f"{role}@example.test")
    make_user(Role.AE, team=team, name="Tess Mate")
    code = with_totp(user) if role in (Role.FINANCE, Role.ADMIN) else None

    page = logged_in_page(user, totp_code=code)

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_text(LANDING[role])).to_be_visible()
    expect(page.locator("header .who .badge")).to_have_text(ROLE_LABELS[role])
    expect(page.locator(".card").filter(has_text="Your team")).to_contain_text("Tess Mate")
    nav = page.get_by_role("navigation", name="Main").get_by_role("link")
    expected = {
        Role.AE: ["Home", "Book", "Opportunities", "Statements", "Forecast", "Reviews", "People"],
        Role.CSM: ["Home", "Alerts", "Book", "Opportunities", "Statements", "Forecast", "Reviews", "People"],
        Role.LEADER: [
            "Home",
            "Alerts",
            "Book",
            "Opportunities",
            "Metrics",
            "Statements",
            "Comp",
            "Forecast",
            "Planning",
            "Product",
            "Reviews",
            "People",
        ],
        Role.FINANCE: ["Home", "Metrics", "Statements", "Comp", "Forecast", "Planning", "Reviews", "People", "Data"],
        Role.PRODUCT: ["Home", "Metrics", "Forecast", "Product", "Reviews", "People"],
        Role.ADMIN: [
            "Home",
            "Alerts",
            "Book",
            "Opportunities",
            "Metrics",
            "Statements",
            "Comp",
            "Forecast",
            "Planning",
            "Product",
            "Reviews",
            "People",
            "Data",
            "System",
        ],
    }
    expect(nav).to_have_text(expected[role])
    screenshot(page, f"home-{role}")


def test_finance_without_totp_is_sent_to_set_it_up(logged_in_page, make_user):
    finance = make_user(Role.FINANCE, name="Fran Finance", email="finance@example.test")

    page = logged_in_page(finance)

    expect(page.get_by_role("status").filter(has_text="requires two-factor authentication")).to_be_visible()
    # allauth (65.x, MFA_REAUTHENTICATION_REQUIRED defaults to True) asks for the password
    # again before TOTP can be activated, even straight after logging in.
    if "/auth/reauthenticate/" in page.url:
        screenshot(page, "mfa-reauthenticate")
        form = page.locator("main form").filter(has=page.locator("input[name=password]"))
        form.locator("input[name=password]").fill(TEST_PASSWORD)
        form.locator(SUBMIT).click()
    expect(page).to_have_url(re.compile(r"/auth/2fa/totp/activate/$"))
    expect(page.get_by_role("heading", name="Activate Authenticator App")).to_be_visible()
    expect(page.locator("main form input[name=code]")).to_be_visible()
    screenshot(page, "mfa-totp-activate")
    # Every product page sends them back here until they have a second factor.
    page.goto(page.url.split("/auth/")[0] + "/people/")
    expect(page).to_have_url(re.compile(r"/auth/2fa/totp/activate/$"))
