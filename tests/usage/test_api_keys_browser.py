"""Finance connects a BI tool in Chromium: a read key that reads as a leader, its secret
shown once, the list saying what it reads, and the key working against the read API."""

from __future__ import annotations

import pytest
from django.test import Client
from playwright.sync_api import expect

from revops.models import ApiKey, Role
from tests.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_creates_a_read_key_for_a_bi_tool_and_it_reads_as_the_leader(logged_in_page, make_user, with_totp):
    finance = make_user(Role.FINANCE, name="Finn Ance", email="finance@example.test")
    make_user(Role.LEADER, name="Lena Leader", email="leader@example.test")
    page = logged_in_page(finance, totp_code=with_totp(finance))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Data").click()
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("BI dashboard")
    page.get_by_label("Write usage events").uncheck()
    page.get_by_label("Read metrics, alerts and forecasts").check()
    page.get_by_label("Reads as").select_option(label="Lena Leader (Leader)")
    page.get_by_role("button", name="Create key").click()

    secret = page.get_by_label("New API key").input_value()
    assert secret.startswith("rvk_")
    row = page.locator("table tbody tr").filter(has_text="BI dashboard")
    expect(row).to_contain_text("Everything Lena Leader (leader) may see")
    expect(row).to_contain_text("read")
    screenshot(page, "api-keys-finance")
    page.reload()  # the create was redirected: a reload makes no second key and hides the secret
    expect(page.get_by_label("New API key")).to_have_count(0)
    assert ApiKey.objects.filter(name="BI dashboard").count() == 1

    key = ApiKey.objects.get(name="BI dashboard")
    assert (key.created_by, key.acts_as.email, key.scopes) == (finance, "leader@example.test", ["read"])
    answer = Client().get("/api/v1/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200 and answer.json()["scope"] == "company"
