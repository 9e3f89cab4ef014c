"""Every role's day through the browser, on the demo company: log in, read the home page,
act on the top item, see the result. The figures a page shows are checked against the
database (the demo is seeded as of today, so they are worked out from its rows, never
copied from the page under test).

One seed serves the six journeys (subtests, in the order a day runs: the AE's inquiry is
the one finance answers).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from revops.models import User
from tests.browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def money(value, places: int = 0) -> str:
    from revops.templatetags.fmt import money as fmt

    return fmt(value, places)


def open_as(browser: Browser, base: str, email: str) -> Page:
    from demo.data import DEMO_PASSWORD
    from demo.people import current_demo_totp_code

    user = User.objects.get(email=email)
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    needs_code = user.role in ("finance", "admin")
    return log_in(page, base, user, password=DEMO_PASSWORD, totp_code=current_demo_totp_code if needs_code else None)


def test_each_role_does_its_day_in_the_browser(browser, live_server, subtests):
    from accounts.access import owned_accounts
    from comp.models import Inquiry, LedgerLine
    from comp.periods import add_months, month_start
    from comp.selectors import statement_totals
    from revops.clock import today_utc
    from usage.models import ACTIVE_ALERT_STATES, AccountMetrics, Alert, AlertState
    from usage.signals.selectors import metrics_as_of

    call_command("seed_demo", "--accounts", "60", "--months", "8")
    base = live_server.url
    as_of = metrics_as_of()
    month = month_start(today_utc())
    ae = User.objects.get(email="ae@example.com")

    with subtests.test(role="ae"):
        page = open_as(browser, base, "ae@example.com")
        ytd = statement_totals(person=ae, period=month).ytd
        expect(page.locator("#home-pay")).to_contain_text(f"Paid year to date{money(ytd, 2)}")
        expect(page.locator("#home-gates")).to_contain_text("Under the floor before a gate")
        book = AccountMetrics.objects.filter(as_of=as_of, account__in=owned_accounts(people=[ae.pk], on=as_of))
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Book").click()
        expect(page.locator("h1")).to_have_text("My book")
        expect(page.locator("#book-table tfoot")).to_contain_text(f"All {book.count()} accounts in the book")
        # The top item of the day: a question on last month's pay.
        last = add_months(month, -1)
        line = LedgerLine.objects.filter(person=ae, period=last).order_by("pk").first()
        page.goto(f"{base}/comp/statements/{ae.pk}/{last:%Y-%m}/")
        row = page.locator(f"#line-{line.pk}")
        row.locator("summary").click()
        row.locator("textarea[name=body]").fill("Which burn did the checkpoint use?")
        row.get_by_role("button", name="Send to finance").click()
        expect(page.locator("#messages")).to_contain_text("Your inquiry is with finance")
        expect(row).to_contain_text("Which burn did the checkpoint use?")
        screenshot(page, "journey-ae")
        page.context.close()
    inquiry = Inquiry.objects.get(line=line)

    with subtests.test(role="finance"):
        page = open_as(browser, base, "finance@example.com")
        close = page.locator("#home-close")
        open_count = Inquiry.objects.filter(status=Inquiry.Status.OPEN).count()
        expect(close).to_contain_text(f"Open inquiries ({open_count}), oldest first")
        close.get_by_role("link", name=re.compile(rf"{ae.name} ·")).first.click()
        expect(page).to_have_url(re.compile(rf"/comp/statements/{ae.pk}/{last:%Y-%m}/"))
        row = page.locator(f"#line-{line.pk}")
        row.locator("summary").click()
        answer = row.locator("form.answer-form")
        answer.locator("textarea[name=body]").fill("The burn on the day of the checkpoint; see the inputs.")
        answer.get_by_role("button", name="Answer").click()
        expect(page.locator("#messages")).to_contain_text(f"Answered {ae.name}'s inquiry.")
        screenshot(page, "journey-finance")
        page.context.close()
        inquiry.refresh_from_db()
        assert inquiry.status == Inquiry.Status.ANSWERED

    with subtests.test(role="csm"):
        csm = User.objects.get(email="csm@example.com")
        mine = Alert.objects.filter(state__in=ACTIVE_ALERT_STATES).filter(owner=csm) | Alert.objects.filter(
            state__in=ACTIVE_ALERT_STATES, escalated_to=csm
        )
        page = open_as(browser, base, "csm@example.com")
        expect(page.locator("#home-triage")).to_contain_text(f"{mine.distinct().count()} active")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
        top = mine.filter(state=AlertState.OPEN).order_by("-severity", "-revenue_at_risk", "opened_on", "pk").first()
        opened = mine.filter(state=AlertState.OPEN).distinct().count()
        counts = page.locator("#alert-counts")
        expect(counts).to_contain_text(f"{opened} open")
        page.locator(f"#alert-{top.pk}").get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#messages")).to_contain_text(f"Acknowledged: {top.account.name}")
        expect(counts).to_contain_text(f"{opened - 1} open")
        screenshot(page, "journey-csm")
        page.context.close()

    with subtests.test(role="leader"):
        page = open_as(browser, base, "leader@example.com")
        everyone = AccountMetrics.objects.filter(as_of=as_of)
        expect(page.locator("#home-team")).to_contain_text(f"Accounts{everyone.count()}")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Book").click()
        expect(page.locator("h1")).to_have_text("Every account")
        page.locator("#book-rollups").get_by_role("link", name=ae.name).click()
        expect(page.locator("h1")).to_have_text(f"{ae.name}'s book")
        book = AccountMetrics.objects.filter(as_of=as_of, account__in=owned_accounts(people=[ae.pk], on=as_of))
        expect(page.locator("#book-table tfoot")).to_contain_text(f"All {book.count()} accounts in the book")
        screenshot(page, "journey-leader")
        page.context.close()

    with subtests.test(role="product"):
        from usage.models import Meter

        page = open_as(browser, base, "product@example.com")
        meters = page.locator("#home-meters")
        for meter in Meter.objects.all():
            expect(meters).to_contain_text(meter.name)
        expect(page.locator("#home-releases")).to_contain_text("Latest releases")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Product").click()
        expect(page.locator("h1")).to_contain_text("Product")
        screenshot(page, "journey-product")
        page.context.close()

    with subtests.test(role="admin"):
        from usage.models import UsageHistory

        page = open_as(browser, base, "admin@example.com")
        expect(page.locator("#home-data")).to_contain_text("failed import")
        page.goto(f"{base}/system/alert-settings/")
        history = page.locator("#usage-history")
        day = (as_of - dt.timedelta(days=240)).isoformat()
        history.locator("input[name=complete_from]").fill(day)
        history.get_by_role("button", name="Save").click()
        expect(page.locator("#messages")).to_contain_text(f"Usage history complete from: {day}.")
        screenshot(page, "journey-admin")
        page.context.close()
        assert UsageHistory.current().complete_from.isoformat() == day
