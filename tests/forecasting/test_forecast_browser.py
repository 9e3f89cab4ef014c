"""In the browser: the account page's forecast panel and its divisions toggle, and a
product manager's forecast page."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _tick_labels(page, chart: str) -> list[str]:
    return page.locator(f"{chart} .ytick text").all_text_contents()


def test_the_forecast_panel_shows_the_parent_with_its_divisions_and_toggles_to_its_own(
    logged_in_page, live_server, world
):
    from playwright.sync_api import expect

    from tests.browser import screenshot

    page = logged_in_page(world["leader"])
    page.goto(f"{live_server.url}/accounts/acme/")
    address = page.url
    panel = page.locator("#forecast-panel")

    # Acme 100 a day + Acme EU 50 a day: 150 × 90 = $13,500 with its division.
    expect(panel.locator(".metric-next-90 .metric-value")).to_have_text("$13,500")
    expect(panel.locator(".metric-next-90 dt")).to_contain_text("incl. divisions")
    expect(panel.locator(".js-plotly-plot")).to_have_count(1)
    panel.get_by_role("link", name="own usage only").click()
    expect(panel.locator(".metric-next-90 .metric-value")).to_have_text("$9,000")  # 100 × 90
    expect(panel.locator(".metric-next-90 dt")).to_contain_text("own usage only")
    expect(panel.locator(".js-plotly-plot")).to_have_count(1)  # redrawn after the swap
    assert page.url == address  # the panel swapped, the page stayed
    screenshot(page, "forecast-panel-own-usage")


def test_a_product_manager_opens_the_company_forecast_with_dollar_ticks(logged_in_page, live_server, world):
    from playwright.sync_api import expect

    from revops.models import Role
    from tests.browser import screenshot
    from tests.factories import UserFactory

    page = logged_in_page(UserFactory(role=Role.PRODUCT, name="Pat"))
    page.goto(f"{live_server.url}/forecasts/")

    expect(page.locator("h1")).to_have_text("Forecast · Company")
    expect(page.locator(".metric-next-90 .metric-value")).to_have_text("$16,200")
    expect(
        page.locator('[data-chart="forecast-fan"] .js-plotly-plot, [data-chart="forecast-fan"].js-plotly-plot')
    ).to_have_count(1)
    ticks = _tick_labels(page, '[data-chart="forecast-fan"]')
    assert ticks and not [t for t in ticks if re.search(r"\dm$", t)], ticks  # never "$800m"
    screenshot(page, "forecast-product-manager")
