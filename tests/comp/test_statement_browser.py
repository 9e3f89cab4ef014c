"""An AE reads a statement in headless Chromium: opens a line's explanation, raises an
inquiry; finance answers it with an adjustment and approves the statement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Account, Segment
from comp.models import Inquiry, LedgerLine, LineKind, Statement, StatementStatus
from revops.models import Role, Team
from tests.browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OCT = dt.date(2026, 10, 1)


def add(person, kind, amount, *, account=None, key, formula, explanation, **inputs) -> LedgerLine:
    return LedgerLine.objects.create(
        person=person,
        period=OCT,
        account=account,
        kind=kind,
        key=key,
        amount=Decimal(amount),
        inputs={"formula": formula, **inputs},
        explanation=explanation,
    )


def test_ae_reads_a_line_raises_an_inquiry_and_finance_answers_and_approves(
    logged_in_page, live_server, make_user, with_totp
):
    team = Team.objects.create(name="Sales East")
    avery = make_user(Role.AE, team=team, name="Avery Exec", email="avery@example.test")
    fran = make_user(Role.FINANCE, name="Fran Finance", email="fran@example.test")
    fran_code = with_totp(fran)
    acme = Account.objects.create(external_id="acme", name="Acme Corp", segment=Segment.MID_MARKET)
    globex = Account.objects.create(external_id="globex", name="Globex", segment=Segment.ENTERPRISE)
    commission = add(
        avery,
        LineKind.COMMISSION,
        "12000.00",
        account=acme,
        key="land:acme:signature",
        formula="240,000 × 10% × 50%",
        explanation="Half of the 10% land commission on Acme's $240,000 commitment, paid at signature.",
        committed_arr="240,000",
        base_rate="10%",
        share="50% at signature",
    )
    add(
        avery,
        LineKind.HOLD,
        "12000.00",
        account=acme,
        key="land:acme:checkpoint_90",
        formula="240,000 × 10% × 50%",
        explanation="The second half is held until Acme's burn reaches the 25% floor at the 90-day checkpoint.",
        releases_if="Acme's burn is at least 25% of its commitment",
        recheck_until="2027-10-01",
    )
    add(
        avery,
        LineKind.SPIFF,
        "3000.00",
        account=globex,
        key="spiff:globex:region",
        formula="flat $3,000",
        explanation="New region (eu-west) activated at Globex.",
        region="eu-west",
    )
    add(
        avery,
        LineKind.DRAW,
        "2500.00",
        key="draw:2026-10",
        formula="flat $2,500 (month 2 of 6)",
        explanation="Bridge draw for your new logos, recovered from later commission.",
        recoverable=True,
    )
    path = f"/comp/statements/{avery.pk}/2026-10/"

    # --- The AE opens the statement and a line's explanation --------------------------------
    page = logged_in_page(avery)
    page.goto(live_server.url + path)
    expect(page.locator("h1")).to_have_text("My statement · October 2026")
    totals = page.locator("#statement-totals")
    expect(totals.locator(".metric-payable")).to_contain_text("$17,500.00")  # 12,000 + 3,000 + 2,500
    expect(totals.locator(".metric-held_balance")).to_contain_text("$12,000.00")
    expect(totals.locator(".metric-draw_balance")).to_contain_text("$2,500.00")
    expect(page.locator("#statement-status")).to_contain_text("Open")
    expect(page.locator("#group-hold")).to_contain_text("Released if Acme's burn is at least 25% of its commitment")

    row = page.locator(f"#line-{commission.pk}")
    row.locator("summary").click()
    detail = row.locator(".line-detail")
    expect(detail).to_contain_text("Half of the 10% land commission on Acme's $240,000 commitment")
    expect(detail.locator(".formula")).to_contain_text("240,000 × 10% × 50%")
    expect(detail.locator("dl.inputs")).to_contain_text("Committed ARR$240,000")
    screenshot(page, "statement-ae-line-open")

    detail.locator("textarea[name=body]").fill("Was the accelerator applied? I was above 100% in Q4.")
    detail.get_by_role("button", name="Send to finance").click()
    expect(detail.locator(".thread")).to_contain_text("Was the accelerator applied?")
    expect(detail.locator(".thread")).to_contain_text("Open")
    expect(row.locator("summary .inq-tag")).to_have_text("inquiry open")
    expect(page.locator("#statement-status .open-inquiries")).to_have_text("1 open inquiry")
    screenshot(page, "statement-ae-inquiry")
    assert Inquiry.objects.get(line=commission).status == Inquiry.Status.OPEN

    # --- Finance answers with an adjustment, then approves -------------------------------------
    page.locator("header .who").get_by_role("button", name="Log out").click()
    log_in(page, live_server.url, fran, totp_code=fran_code)
    page.goto(live_server.url + path)
    expect(page.locator("h1")).to_have_text("Avery Exec · October 2026")
    row = page.locator(f"#line-{commission.pk}")
    expect(row.locator(".inq-tag")).to_have_text("inquiry open")
    row.locator("summary").click()
    detail = row.locator(".line-detail")
    detail.locator(".answer-form textarea[name=body]").fill("Yes: the 1.5× accelerator was missing for October.")
    detail.locator(".answer-form input[name=adjustment]").fill("600")
    detail.get_by_role("button", name="Answer").click()
    expect(detail.locator(".thread")).to_contain_text("Adjustment of $600.00 in October 2026")
    expect(page.locator("#statement-totals .metric-payable")).to_contain_text("$18,100.00")  # 17,500 + 600
    expect(row.locator("summary .inq-tag")).to_have_text("inquiry answered")
    expect(page.locator("#statement-status .open-inquiries")).to_have_count(0)
    screenshot(page, "statement-finance-answered")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Approve statement").click()
    status = page.locator("#statement-status")
    expect(status).to_contain_text("Approved")
    expect(status).to_contain_text("by Fran Finance")
    expect(page.get_by_role("button", name="Approve statement")).to_have_count(0)
    expect(page.locator(f"#line-{commission.pk} .line-status")).to_have_text("approved")
    screenshot(page, "statement-finance-approved")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Statements").click()
    page.locator("#period-input").fill("2026-10")
    page.locator("#period-input").dispatch_event("change")
    expect(page.locator(f"#stmt-{avery.pk}")).to_contain_text("Approved")
    expect(page.locator(f"#stmt-{avery.pk}")).to_contain_text("$18,100.00")
    screenshot(page, "statements-list-finance")

    statement = Statement.objects.get(person=avery, period=OCT)
    assert statement.status == StatementStatus.APPROVED
    assert statement.approved_totals["payable"] == "18100.00"

    # --- The AE sees the answer and the approval -------------------------------------------------
    page.locator("header .who").get_by_role("button", name="Log out").click()
    log_in(page, live_server.url, avery)
    page.goto(live_server.url + path)
    expect(page.locator("#statement-status")).to_contain_text("Approved")
    row = page.locator(f"#line-{commission.pk}")
    row.locator("summary").click()
    expect(row.locator(".thread")).to_contain_text("Yes: the 1.5× accelerator was missing for October.")
    screenshot(page, "statement-ae-approved")
    page.get_by_role("link", name="Statements", exact=True).first.click()
    expect(page.locator(".my-statements")).to_contain_text("October 2026")
    screenshot(page, "statements-index-ae")


def test_finance_closes_last_month_answers_bulk_approves_marks_paid_and_downloads_payroll(
    logged_in_page, live_server, make_user, with_totp
):
    """The monthly close in Chromium: the open inquiry from the home page, approve the
    pending statements, record payment, and the payroll file matches the ledger."""
    from comp.periods import add_months, month_start
    from revops.clock import today_utc

    last = add_months(month_start(today_utc()), -1)
    team = Team.objects.create(name="Sales East")
    avery = make_user(Role.AE, team=team, name="Avery Exec", email="avery@example.test", employee_id="E-7")
    bea = make_user(Role.AE, team=team, name="Bea West", email="bea@example.test")
    fran = make_user(Role.FINANCE, name="Fran Finance", email="fran@example.test")
    fran_code = with_totp(fran)
    lines = {}
    for person, kind, amount in (
        (avery, LineKind.COMMISSION, "4000.00"),
        (avery, LineKind.SPIFF, "2500.00"),
        (bea, LineKind.COMMISSION, "1800.50"),
    ):
        lines[(person.pk, kind)] = LedgerLine.objects.create(
            person=person,
            period=last,
            kind=kind,
            key=f"{kind}:{person.pk}",
            amount=Decimal(amount),
            inputs={"formula": amount},
            explanation=f"A {kind} line.",
        )
    inquiry = Inquiry.objects.create(line=lines[(bea.pk, LineKind.COMMISSION)], raised_by=bea)
    inquiry.messages.create(author=bea, body="Is the Globex renewal in here?")

    page = logged_in_page(fran, totp_code=fran_code)
    close = page.locator("#home-close")
    expect(close).to_contain_text("Open inquiries (1), oldest first")
    close.get_by_role("link", name="Bea West · Commission").click()
    row = page.locator(f"#line-{inquiry.line_id}")
    row.locator("summary").click()
    row.locator(".answer-form textarea[name=body]").fill("Not yet: it renews next month.")
    row.get_by_role("button", name="Answer").click()
    expect(page.locator("#messages")).to_contain_text("Answered Bea West's inquiry.")

    page.goto(f"{live_server.url}/comp/statements/?period={last:%Y-%m}")
    board = page.locator("#close-board")
    expect(board).to_contain_text("0 of 2 approved · 2 pending · 0 waiting on an open inquiry · 0 paid")
    board.get_by_role("button", name="Approve the 2 pending without an open inquiry").click()
    expect(page.locator("#messages")).to_contain_text(f"Approved 2 {last:%B %Y} statements.")
    board.locator("input[name=paid_on]").fill(today_utc().isoformat())
    board.get_by_role("button", name="Mark the 2 approved paid").click()
    expect(page.locator("#messages")).to_contain_text(f"2 approved {last:%B %Y} statements marked paid")
    expect(board).to_contain_text("2 of 2 approved · 0 pending · 0 waiting on an open inquiry · 2 paid")
    with page.expect_download() as download:
        board.get_by_role("link", name="Download the payroll file").click()
    screenshot(page, "close-finance")

    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith(f"Avery Exec,avery@example.test,E-7,{last:%Y-%m},4000.00,0.00,2500.00")
    assert rows[1].split(",")[-3:-1] == ["6500.00", "USD"]
    assert rows[2].split(",")[-3] == "1800.50"
    assert set(Statement.objects.filter(period=last).values_list("status", flat=True)) == {StatementStatus.APPROVED}
    assert Statement.objects.filter(period=last, paid_on=today_utc()).count() == 2


def test_an_ae_reads_what_they_will_be_paid_and_when(logged_in_page, live_server, make_user):
    """Two land deals, hand-worked, on dates relative to today: Acme ($240,000 signed 75
    days ago, burning $400/day → 60.83%) pays its $12,000 day-90 share in 15 days and keeps
    it at day 365; Fourth Coffee ($226,000 signed 200 days ago, $198/day → 31.98%) cleared
    day 90 but loses its $11,300 at day 365."""
    from accounts.models import Contract, OwnerRole, Ownership, PricingModel
    from comp.engine import run_comp
    from comp.models import Assignment, Plan, PlanType, PlanVersion
    from comp.periods import add_months, month_start
    from revops.clock import yesterday_utc
    from tests.comp.test_engine import LAND, make_meter, spend

    as_of = yesterday_utc()
    avery = make_user(Role.AE, name="Avery Exec", email="avery@example.test")
    plan = Plan.objects.create(name="Land", type=PlanType.LAND)
    PlanVersion.objects.create(plan=plan, version=1, effective_from=dt.date(2024, 1, 1), parameters=LAND)
    Assignment.objects.create(person=avery, plan=plan, start_on=dt.date(2024, 1, 1), quota=Decimal("1000000"))
    meter = make_meter("api-calls")
    deals = {}
    for external_id, name, commit, days_ago, daily in (
        ("acme", "Acme Corp", "240000", 75, "400"),
        ("fourth", "Fourth Coffee", "226000", 200, "198"),
    ):
        account = Account.objects.create(external_id=external_id, name=name, segment=Segment.MID_MARKET)
        Ownership.objects.create(account=account, person=avery, role=OwnerRole.LAND_AE, start_on=dt.date(2024, 1, 1))
        signed = as_of - dt.timedelta(days=days_ago)
        Contract.objects.create(
            external_id=f"{external_id}-1",
            account=account,
            pricing_model=PricingModel.COMMIT,
            signed_on=signed,
            start_on=signed,
            end_on=signed + dt.timedelta(days=729),
            committed_arr=Decimal(commit),
        )
        spend(account, meter, signed, as_of, daily)
        deals[external_id] = signed
    month = month_start(deals["fourth"])
    while month < month_start(as_of):
        run_comp(period=month)
        month = add_months(month, 1)

    page = logged_in_page(avery)
    page.goto(f"{live_server.url}/comp/statements/{avery.pk}/{as_of:%Y-%m}/")
    outlook = page.locator("#estimator")
    expect(outlook).to_contain_text(f"Pay outlook if today's burn holds · burn as of {as_of}")
    expect(outlook).to_contain_text("Expected from land deals over the next 12 statements: $700.00")
    timeline = outlook.locator("table.pay-timeline")
    pays_in = month_start(deals["acme"] + dt.timedelta(days=90))
    claws_in = month_start(deals["fourth"] + dt.timedelta(days=365))
    expect(timeline.locator("tr", has_text=f"{pays_in:%B %Y}")).to_contain_text(
        "Acme Corp · Day-90 share: $12,000.00 (burn 60.8% now, needs 25.0%)"
    )
    expect(timeline.locator("tr", has_text=f"{claws_in:%B %Y}")).to_contain_text(
        "Fourth Coffee · Day-365 clawback: −$11,300.00 (burn 32.0% now, needs 40.0%)"
    )
    gates = outlook.locator("table.estimator")
    expect(gates.locator("tr", has_text="Fourth Coffee").filter(has_text="clawback")).to_contain_text("clawback due")
    expect(gates.locator("tr", has_text="Acme Corp").filter(has_text="clawback")).to_contain_text(
        "no clawback if burn holds"
    )
    screenshot(page, "pay-outlook-ae")
    # The account the clawback turns on is one click away.
    timeline.get_by_role("link", name="Fourth Coffee").first.click()
    expect(page.locator("h1")).to_contain_text("Fourth Coffee")
