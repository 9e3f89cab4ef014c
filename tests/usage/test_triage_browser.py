"""A CSM works the triage queue in headless Chromium: snooze one alert, resolve another,
and the counts in the header follow without a page reload."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import Account, Segment
from revops.models import Role, Team
from tests.browser import screenshot
from usage.models import Alert, AlertKind, AlertState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_csm_snoozes_one_alert_resolves_another_and_counts_follow(logged_in_page, make_user):
    team = Team.objects.create(name="Customer Success")
    csm = make_user(Role.CSM, team=team, name="Casey CSM", email="casey@example.test")
    day = dt.date(2026, 11, 20)
    alerts = {}
    for n, (name, kind, severity, risk) in enumerate(
        [
            ("Acme", AlertKind.BELOW_FLOOR, 4, "120000"),
            ("Globex", AlertKind.SUDDEN_DECLINE, 3, "45000"),
            ("Initech", AlertKind.PLATEAU, 2, "8000"),
        ]
    ):
        account = Account.objects.create(external_id=f"acct-{n}", name=name, segment=Segment.SMB)
        alerts[name] = Alert.objects.create(
            account=account,
            kind=kind,
            severity=severity,
            owner=csm,
            revenue_at_risk=Decimal(risk),
            opened_on=day,
            last_seen_on=day,
            details={"burn_rate": "0.1200"},
        )

    page = logged_in_page(csm)
    page.goto(page.url.rstrip("/") + "/alerts/")
    counts = page.locator("#alert-counts")
    expect(counts).to_contain_text("3 open")
    expect(counts).to_contain_text("$173.0K revenue at risk")
    rows = page.locator("#alert-queue tbody tr")
    expect(rows.nth(0)).to_contain_text("Acme")  # most severe first
    screenshot(page, "triage-before")

    # Snooze Globex for a week through its "More…" panel (loaded when opened).
    globex = page.locator(f"#alert-{alerts['Globex'].pk}")
    globex.locator("details.more summary").click()
    until = (dt.datetime.now(tz=dt.UTC).date() + dt.timedelta(days=7)).isoformat()
    globex.locator("input[name=until]").fill(until)
    globex.get_by_role("button", name="Snooze").click()
    globex = page.locator(f"#alert-{alerts['Globex'].pk}")
    expect(globex).to_contain_text("Snoozed")
    expect(globex).to_contain_text(f"until {until}")
    # The save says so, though htmx answered with a fragment (the message comes out of band).
    expect(page.locator("#messages")).to_contain_text("Snoozed: Globex · Sudden decline.")
    expect(counts).to_contain_text("2 open")
    expect(counts).to_contain_text("1 snoozed")

    # Resolve Initech with an outcome.
    initech = page.locator(f"#alert-{alerts['Initech'].pk}")
    initech.locator("details.more summary").click()
    initech.locator("input[name=note]").fill("Workshop booked; new team onboarding")
    initech.get_by_role("button", name="Resolve").click()
    initech = page.locator(f"#alert-{alerts['Initech'].pk}")
    expect(initech).to_contain_text("Resolved")
    expect(page.locator("#messages")).to_contain_text("Resolved: Initech · Plateau / stalled adoption.")
    expect(counts).to_contain_text("1 open")
    expect(counts).to_contain_text("1 snoozed")
    expect(counts).to_contain_text("$165.0K revenue at risk")  # 120,000 + 45,000 still active
    screenshot(page, "triage-after")

    # The page was never reloaded: the same document, and the database agrees.
    assert Alert.objects.get(pk=alerts["Globex"].pk).state == AlertState.SNOOZED
    resolved = Alert.objects.get(pk=alerts["Initech"].pk)
    assert (resolved.state, resolved.outcome) == (AlertState.RESOLVED, "Workshop booked; new team onboarding")

    # The history of the resolved alert names who did what.
    initech.locator("details.why summary").click()
    expect(initech.locator(".history")).to_contain_text("Casey CSM — resolve → resolved: Workshop booked")
