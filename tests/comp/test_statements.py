"""Statements: totals from the ledger, grouping, approval freeze, inquiries, pages, CSV, API
and who may see what. Ledger lines are written directly (the run engine is tested apart)."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, Segment
from comp import selectors, services
from comp.models import (
    PAYABLE_KINDS,
    Assignment,
    Attainment,
    Inquiry,
    InquiryMessage,
    LedgerLine,
    LineKind,
    Plan,
    PlanType,
    PlanVersion,
    Statement,
    StatementStatus,
)
from comp.periods import approved_periods, open_period
from revops.api_keys import api_key_create
from revops.errors import ApplicationError
from revops.models import ApiKey, Role, Team

MAR = dt.date(2026, 3, 1)
APR = dt.date(2026, 4, 1)
HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return html.unescape(response.content.decode())


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(make_user, with_totp):
    """Sales East (Avery, Ari; managed by Mo) and Sales West (Bea); Fran in finance."""
    mo = make_user(Role.AE, name="Mo Manager", email="mo@example.test")  # a player-coach: scope is the team
    east = Team.objects.create(name="Sales East", manager=mo)
    west = Team.objects.create(name="Sales West")
    fran = make_user(Role.FINANCE, name="Fran Finance", email="fran@example.test")
    with_totp(fran)  # finance must have a second factor, or every page sends them to set one up
    return {
        "avery": make_user(Role.AE, team=east, name="Avery Exec", email="avery@example.test"),
        "ari": make_user(Role.AE, team=east, name="Ari Exec", email="ari@example.test"),
        "bea": make_user(Role.AE, team=west, name="Bea West", email="bea@example.test"),
        "mo": mo,
        "fran": fran,
    }


@pytest.fixture
def acme(db):
    return Account.objects.create(external_id="acme", name="Acme Corp", segment=Segment.MID_MARKET)


def line(person, period, kind, amount, *, account=None, formula=None, explanation="", **inputs) -> LedgerLine:
    return LedgerLine.objects.create(
        person=person,
        period=period,
        account=account,
        kind=kind,
        key=f"{kind}:{period:%Y-%m}:{LedgerLine.objects.count()}",
        amount=Decimal(amount),
        inputs={"formula": formula or f"{amount}", **inputs},
        explanation=explanation or f"A {kind} line of {amount}.",
    )


@pytest.fixture
def ledger(people, acme):
    """Avery's ledger from December 2025 to April 2026 (and one of Bea's lines)."""
    avery = people["avery"]
    # December 2025: last year, outside March's YTD but inside the running balances.
    line(avery, dt.date(2025, 12, 1), LineKind.COMMISSION, "9999.00")
    line(avery, dt.date(2025, 12, 1), LineKind.DRAW, "1500.00", recoverable=True)
    line(avery, dt.date(2025, 12, 1), LineKind.HOLD, "300.00")
    # January / February 2026.
    line(avery, dt.date(2026, 1, 1), LineKind.COMMISSION, "700.00")
    line(avery, dt.date(2026, 1, 1), LineKind.DRAW, "2000.00", recoverable=True)
    line(avery, dt.date(2026, 1, 1), LineKind.HOLD, "500.00")
    line(avery, dt.date(2026, 2, 1), LineKind.DRAW, "2000.00", recoverable=False)  # guaranteed: pay, not owed
    line(avery, dt.date(2026, 2, 1), LineKind.HOLD, "-500.00", outcome="released")
    line(avery, dt.date(2026, 2, 1), LineKind.RELEASE, "500.00")
    # March 2026: one line of every kind.
    march = {
        "commission": line(
            avery,
            MAR,
            LineKind.COMMISSION,
            "1000.00",
            account=acme,
            formula="20,000 × 10% × 50%",
            explanation="Half of the 10% commission on Acme's $20,000 commitment, paid at signature.",
            committed_arr="20,000",
            rate="10%",
            share="50%",
            _engine_cache="internal",
        ),
        "accelerator": line(avery, MAR, LineKind.ACCELERATOR, "250.00", account=acme),
        "spiff": line(avery, MAR, LineKind.SPIFF, "3000.00", account=acme),
        "bonus": line(avery, MAR, LineKind.BONUS, "500.00"),
        "draw": line(avery, MAR, LineKind.DRAW, "2000.00", recoverable=True),
        "draw_recovery": line(avery, MAR, LineKind.DRAW_RECOVERY, "-800.00"),
        "hold": line(
            avery,
            MAR,
            LineKind.HOLD,
            "1000.00",
            account=acme,
            formula="20,000 × 10% × 50%",
            releases_if="Acme's burn is at least 25% of its commitment",
            recheck_until="2027-03-01",
        ),
        "release": line(avery, MAR, LineKind.RELEASE, "400.00"),
        "clawback": line(avery, MAR, LineKind.CLAWBACK, "-600.00", account=acme),
        "true_up": line(avery, MAR, LineKind.TRUE_UP, "75.50"),
        "adjustment": line(avery, MAR, LineKind.ADJUSTMENT, "-25.25"),
    }
    line(avery, APR, LineKind.COMMISSION, "123.00")  # a later month: in no March total
    line(people["bea"], MAR, LineKind.COMMISSION, "777.00")  # someone else's
    return march


# --- Totals, by hand ---------------------------------------------------------------------


def test_statement_totals_follow_the_ledger_rules(people, ledger):
    view = selectors.statement_view(person=people["avery"], period=MAR)

    # Payable: every March line but the hold:
    #   1000 + 250 + 3000 + 500 + 2000 − 800 + 400 − 600 + 75.50 − 25.25 = 5,800.25
    assert view.totals.payable == Decimal("5800.25")
    assert view.totals.clawbacks == Decimal("-600.00")
    # Held balance through March: 300 (Dec) + 500 (Jan) − 500 (Feb release) + 1000 (Mar) = 1,300
    assert view.totals.held_balance == Decimal("1300.00")
    # Draw balance: recoverable draws 1500 + 2000 + 2000 less the 800 recovered = 4,700
    # (February's guaranteed draw is pay, not owed back).
    assert view.totals.draw_balance == Decimal("4700.00")
    # YTD: January 700 + 2000, February 2000 + 500, March 5,800.25 = 11,000.25 (not December's).
    assert view.totals.ytd == Decimal("11000.25")
    assert view.line_count == 11


def test_lines_are_grouped_by_kind_in_a_fixed_order_with_group_totals(people, ledger):
    view = selectors.statement_view(person=people["avery"], period=MAR)

    assert [g.kind for g in view.groups] == [
        "commission",
        "accelerator",
        "spiff",
        "bonus",
        "true_up",
        "release",
        "adjustment",
        "draw",
        "draw_recovery",
        "clawback",
        "hold",
    ]
    by_kind = {g.kind: g for g in view.groups}
    assert by_kind["clawback"].total == Decimal("-600.00")
    assert by_kind["hold"].payable is False
    assert by_kind["commission"].rows[0].line == ledger["commission"]


def test_line_status_for_holds_and_approval(people, ledger):
    avery = people["avery"]
    forfeited = line(avery, MAR, LineKind.HOLD, "-300.00", outcome="forfeited")
    released = line(avery, MAR, LineKind.HOLD, "-100.00", outcome="released")

    view = selectors.statement_view(person=avery, period=MAR)
    rows = view.rows_by_id
    assert rows[ledger["hold"].pk].status == "held"
    assert rows[forfeited.pk].status == "forfeited"
    assert rows[released.pk].status == "released"
    assert rows[ledger["commission"].pk].status == "pending approval"

    services.statement_approve(person=avery, period=MAR, approver=people["fran"])
    rows = selectors.statement_view(person=avery, period=MAR).rows_by_id
    assert rows[ledger["commission"].pk].status == "approved"
    assert rows[ledger["hold"].pk].status == "held"  # a hold is a memo: approval does not pay it


def test_attainment_rows_are_on_the_statement(people, ledger):
    plan = Plan.objects.create(name="Land FY26", type=PlanType.LAND)
    version = PlanVersion.objects.create(plan=plan, version=1, effective_from=dt.date(2026, 1, 1), parameters={})
    assignment = Assignment.objects.create(
        person=people["avery"], plan=plan, start_on=dt.date(2026, 1, 1), quota=Decimal("400000")
    )
    Attainment.objects.create(
        person=people["avery"],
        period=MAR,
        assignment=assignment,
        plan_version=version,
        quota_period_start=dt.date(2026, 1, 1),
        quota_period_end=dt.date(2026, 3, 31),
        credited=Decimal("150000"),
        quota=Decimal("400000"),
        ramp_share=Decimal("0.5"),
        effective_quota=Decimal("200000"),
        attainment=Decimal("0.75"),
        multiplier=Decimal("1.000"),
    )

    response = client_for(people["avery"]).get(f"/comp/statements/{people['avery'].pk}/2026-03/")

    page = text(response)
    assert "Land FY26" in page
    assert "$150,000" in page and "$200,000" in page and "75.0%" in page and "1×" in page


# --- Approval freeze ---------------------------------------------------------------------


def test_approval_freezes_the_statement_with_a_snapshot_of_its_totals(people, ledger):
    avery, fran = people["avery"], people["fran"]

    statement = services.statement_approve(person=avery, period=MAR, approver=fran)

    assert statement.status == StatementStatus.APPROVED
    assert (statement.approved_by, statement.approved_at is not None) == (fran, True)
    assert statement.approved_totals == {
        "payable": "5800.25",
        "clawbacks": "-600.00",
        "held_balance": "1300.00",
        "draw_balance": "4700.00",
        "ytd": "11000.25",
    }
    with pytest.raises(ApplicationError, match="already approved by Fran Finance"):
        services.statement_approve(person=avery, period=MAR, approver=fran)
    with pytest.raises(ApplicationError, match="Only finance"):
        services.statement_approve(person=avery, period=APR, approver=avery)


def test_a_change_after_approval_lands_in_the_next_open_month(people, ledger):
    avery, fran = people["avery"], people["fran"]
    inquiry = services.inquiry_raise(line=ledger["commission"], person=avery, body="The rate should be 12%.")
    services.statement_approve(person=avery, period=MAR, approver=fran)

    message = services.inquiry_answer(
        inquiry=inquiry, author=fran, body="Agreed: 12% from March.", adjustment=Decimal("200.00")
    )

    adjustment = message.adjustment
    assert (adjustment.kind, adjustment.period, adjustment.amount) == ("adjustment", APR, Decimal("200.00"))
    # March reads as approved, live and snapshot alike; April carries the 200.
    march = selectors.statement_view(person=avery, period=MAR)
    assert march.totals.payable == march.live_totals.payable == Decimal("5800.25")
    # April: 123 commission + 200 adjustment.
    assert selectors.statement_view(person=avery, period=APR).totals.payable == Decimal("323.00")
    # With April frozen too, the engine's next change for March goes to May.
    services.statement_approve(person=avery, period=APR, approver=fran)
    frozen = approved_periods([avery.pk])[avery.pk]
    assert open_period(MAR, frozen) == dt.date(2026, 5, 1)


def test_approving_a_month_that_has_not_ended_is_refused(people):
    """The running month showed an Approve button, and approving it froze a month still
    collecting usage; a future month too."""
    from comp.periods import month_start
    from revops.clock import today_utc

    for period in (dt.date(2099, 1, 1), month_start(today_utc())):
        with pytest.raises(ApplicationError, match="has not ended: its statements can be approved from"):
            services.statement_approve(person=people["avery"], period=period, approver=people["fran"])
    assert not Statement.objects.exists()


# --- Inquiries ---------------------------------------------------------------------------


def test_inquiry_raise_and_answer_with_an_adjustment_in_an_open_month(people, ledger):
    avery, fran = people["avery"], people["fran"]
    inquiry = services.inquiry_raise(line=ledger["spiff"], person=avery, body="Was the new region counted?")
    services.inquiry_raise(line=ledger["spiff"], person=avery, body="It went live on March 3.")
    assert Inquiry.objects.filter(line=ledger["spiff"]).count() == 1  # the follow-up joins the thread

    message = services.inquiry_answer(
        inquiry=inquiry, author=fran, body="Yes; the region SPIFF was missing.", adjustment=Decimal("1500")
    )

    inquiry.refresh_from_db()
    assert inquiry.status == Inquiry.Status.ANSWERED
    adjustment = message.adjustment
    assert (adjustment.person, adjustment.period, adjustment.amount, adjustment.account) == (
        avery,
        MAR,
        Decimal("1500.00"),
        ledger["spiff"].account,
    )
    assert adjustment.inputs["inquiry"] == inquiry.pk
    assert adjustment.inputs["reason"] == "Yes; the region SPIFF was missing."
    assert "formula" in adjustment.inputs
    # 5,800.25 + 1,500 = 7,300.25
    assert selectors.statement_view(person=avery, period=MAR).totals.payable == Decimal("7300.25")
    assert [m.body for m in inquiry.messages.all()] == [
        "Was the new region counted?",
        "It went live on March 3.",
        "Yes; the region SPIFF was missing.",
    ]


def test_inquiry_rules(people, ledger):
    avery, bea, fran = people["avery"], people["bea"], people["fran"]
    with pytest.raises(ApplicationError, match="Only the person"):
        services.inquiry_raise(line=ledger["bonus"], person=bea, body="?")
    with pytest.raises(ApplicationError, match="Write a message"):
        services.inquiry_raise(line=ledger["bonus"], person=avery, body="   ")
    inquiry = services.inquiry_raise(line=ledger["bonus"], person=avery, body="Why 500?")
    with pytest.raises(ApplicationError, match="Only finance"):
        services.inquiry_answer(inquiry=inquiry, author=avery, body="Because.")
    with pytest.raises(ApplicationError, match="changes nothing"):
        services.inquiry_answer(inquiry=inquiry, author=fran, body="Ok", adjustment=Decimal("0"))
    message = services.inquiry_answer(inquiry=inquiry, author=fran, body="The Q1 bonus is flat $500.")
    assert message.adjustment is None
    with pytest.raises(ApplicationError, match="already been answered"):
        services.inquiry_answer(inquiry=inquiry, author=fran, body="Again")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("150", Decimal("150.00")), ("-75.5", Decimal("-75.50")), ("$1,200.00", Decimal("1200.00"))],
)
def test_adjustment_amounts_parse(value, expected):
    assert services.parse_adjustment(value) == expected


@pytest.mark.parametrize("value", ["abc", "1.234", "NaN", "Infinity"])
def test_malformed_adjustment_amounts_say_so(value):
    with pytest.raises(ApplicationError):
        services.parse_adjustment(value)


# --- Pages -------------------------------------------------------------------------------


def test_statement_page_shows_groups_totals_holds_and_status(people, ledger):
    response = client_for(people["avery"]).get(f"/comp/statements/{people['avery'].pk}/2026-03/")

    assert response.status_code == 200
    page = text(response)
    assert "My statement · March 2026" in page
    assert "$5,800.25" in page and "$1,300.00" in page and "$4,700.00" in page and "$11,000.25" in page
    assert "−$600.00" in page
    assert "Released if Acme's burn is at least 25% of its commitment; rechecked monthly until 2027-03-01" in page
    assert "pending approval" in page
    assert "Approve statement" not in page  # not finance
    assert 'id="estimator"' in page  # their own statement


def test_line_partial_explains_with_formula_and_inputs_but_no_internal_keys(people, ledger):
    url = f"/comp/statements/lines/{ledger['commission'].pk}/"
    client = client_for(people["avery"])

    fragment = text(client.get(url, **HTMX))
    full = text(client.get(url))

    assert "<html" not in fragment and "<html" in full
    assert "Half of the 10% commission on Acme's $20,000 commitment" in fragment
    assert "20,000 × 10% × 50%" in fragment
    assert "<dt>Committed ARR</dt><dd>$20,000</dd>" in fragment  # labelled and formatted, not a field key
    assert "key <code>" not in fragment  # the ledger key (land:…:share0) is the system's, not the reader's
    assert "engine" not in fragment.lower()  # "_engine_cache" is internal
    assert "Raise an inquiry about this line" in fragment


def test_ae_raises_an_inquiry_and_finance_answers_through_the_pages(people, ledger):
    avery, fran = people["avery"], people["fran"]
    line_id = ledger["accelerator"].pk

    raised = client_for(avery).post(f"/comp/statements/lines/{line_id}/inquiries/", {"body": "Tier?"}, **HTMX)
    assert raised.status_code == 200 and "Tier?" in text(raised)
    inquiry = Inquiry.objects.get(line_id=line_id)

    answered = client_for(fran).post(
        f"/comp/statements/inquiries/{inquiry.pk}/answer/", {"body": "1.5× above 100%.", "adjustment": "50"}, **HTMX
    )

    page = text(answered)
    assert "1.5× above 100%." in page
    assert "Adjustment of <strong>$50.00</strong> in" in page
    # The totals card comes out of band: 5,800.25 + 50 = 5,850.25.
    assert 'id="statement-totals" class="card totals" hx-swap-oob="true"' in page
    assert "$5,850.25" in page
    bad = client_for(fran).post(f"/comp/statements/inquiries/{inquiry.pk}/answer/", {"body": "x"}, **HTMX)
    assert "already been answered" in text(bad)


def test_finance_approves_from_the_statement_page_with_status_out_of_band(people, ledger):
    url = f"/comp/statements/{people['avery'].pk}/2026-03/approve/"

    response = client_for(people["fran"]).post(url, **HTMX)

    page = text(response)
    assert page.lstrip().startswith('<section id="statement-status"')
    assert "Approved" in page and "by Fran Finance" in page
    assert 'id="statement-lines" hx-swap-oob="true"' in page
    again = client_for(people["fran"]).post(url, **HTMX)
    assert again["HX-Retarget"] == "#statement-flash"
    assert "already approved" in text(again)


def test_finance_list_shows_everyone_with_totals_and_approves_a_row(people, ledger):
    fran = people["fran"]
    page = text(client_for(fran).get("/comp/statements/?period=2026-03"))
    assert "Avery Exec" in page and "Bea West" in page and "$5,800.25" in page and "$777.00" in page

    row = client_for(fran).post(f"/comp/statements/{people['bea'].pk}/2026-03/approve/", {"from": "list"}, **HTMX)
    assert text(row).lstrip().startswith(f'<tr id="stmt-{people["bea"].pk}"')
    assert "Approved" in text(row)


def test_ae_index_lists_their_own_months(people, ledger):
    page = text(client_for(people["avery"]).get("/comp/statements/"))
    assert "March 2026" in page and "April 2026" in page and "December 2025" in page
    assert "Bea West" not in page


def test_manager_sees_the_team_only(people, ledger):
    mo = client_for(people["mo"])
    assert mo.get(f"/comp/statements/{people['avery'].pk}/2026-03/").status_code == 200
    assert mo.get(f"/comp/statements/{people['bea'].pk}/2026-03/").status_code == 404
    page = text(mo.get("/comp/statements/?period=2026-03"))
    assert "Avery Exec" in page and "Bea West" not in page
    assert "Approve" not in page
    # A manager sees, but does not approve.
    assert mo.post(f"/comp/statements/{people['avery'].pk}/2026-03/approve/").status_code == 403


def test_csv_is_formula_safe(people, acme):
    evil = Account.objects.create(external_id="=cmd|'/c calc'!A1", name='=HYPERLINK("x")', segment=Segment.SMB)
    line(people["avery"], MAR, LineKind.SPIFF, "100.00", account=evil, formula="+1+1", explanation="@SUM(A1)")

    response = client_for(people["avery"]).get(f"/comp/statements/{people['avery'].pk}/2026-03.csv")

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header, first = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert header[:4] == ["person", "email", "period", "statement_status"]
    assert first["account"] == '\'=HYPERLINK("x")'
    assert first["account_external_id"] == "'=cmd|'/c calc'!A1"
    assert first["formula"] == "'+1+1"
    assert first["explanation"] == "'@SUM(A1)"
    assert first["amount"] == "100.00"
    assert rows[-5][5:9] == ["total:payable", "", "", "100.00"]


# --- Who may see what ----------------------------------------------------------------------


def test_another_aes_statement_is_a_404_everywhere(people, ledger):
    bea = client_for(people["bea"])
    avery = people["avery"]
    line_id = ledger["commission"].pk

    assert bea.get(f"/comp/statements/{avery.pk}/2026-03/").status_code == 404
    assert bea.get(f"/comp/statements/{avery.pk}/2026-03/", **HTMX).status_code == 404
    assert bea.get(f"/comp/statements/lines/{line_id}/", **HTMX).status_code == 404
    assert bea.get(f"/comp/statements/{avery.pk}/2026-03.csv").status_code == 404
    assert bea.get("/api/v1/statements", {"user": avery.email, "period": "2026-03"}).status_code == 404
    assert bea.post(f"/comp/statements/lines/{line_id}/inquiries/", {"body": "mine?"}).status_code == 404
    assert bea.get(f"/comp/statements/{avery.pk}/estimator/").status_code == 404
    assert bea.post(f"/comp/statements/{avery.pk}/2026-03/approve/").status_code == 404
    assert not Inquiry.objects.exists()


def test_an_ae_cannot_approve_their_own_statement(people, ledger):
    response = client_for(people["avery"]).post(f"/comp/statements/{people['avery'].pk}/2026-03/approve/")
    assert response.status_code == 403


def test_an_ae_cannot_answer_an_inquiry(people, ledger):
    inquiry = services.inquiry_raise(line=ledger["bonus"], person=people["avery"], body="?")
    response = client_for(people["avery"]).post(f"/comp/statements/inquiries/{inquiry.pk}/answer/", {"body": "x"})
    assert response.status_code == 403
    assert client_for(people["bea"]).post(f"/comp/statements/inquiries/{inquiry.pk}/answer/").status_code == 404


def test_a_manager_cannot_raise_an_inquiry_on_their_aes_line(people, ledger):
    response = client_for(people["mo"]).post(
        f"/comp/statements/lines/{ledger['bonus'].pk}/inquiries/", {"body": "?"}, **HTMX
    )
    assert "Only the person a line pays" in text(response)
    assert not Inquiry.objects.exists()


def test_impossible_months_are_404s(people):
    assert client_for(people["avery"]).get(f"/comp/statements/{people['avery'].pk}/2026-13/").status_code == 404


# --- API ---------------------------------------------------------------------------------


def test_api_returns_the_statement_with_lines(people, ledger):
    _, raw = api_key_create(name="reader", scopes=[ApiKey.Scope.READ], created_by=people["mo"])

    response = Client().get(
        "/api/v1/statements",
        {"user": "avery@example.test", "period": "2026-03"},
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["person"], body["period"], body["status"]) == ("avery@example.test", "2026-03", "open")
    assert body["totals"] == {
        "payable": "5800.25",
        "clawbacks": "-600.00",
        "held_balance": "1300.00",
        "draw_balance": "4700.00",
        "ytd": "11000.25",
    }
    commission = next(item for item in body["lines"] if item["id"] == ledger["commission"].pk)
    assert commission["kind"] == "commission"
    assert commission["account"] == "acme"
    assert commission["amount"] == "1000.00"
    assert commission["status"] == "pending_approval"
    assert commission["inputs"]["formula"] == "20,000 × 10% × 50%"
    hold = next(item for item in body["lines"] if item["id"] == ledger["hold"].pk)
    assert hold["status"] == "held"
    assert len(body["lines"]) == 11


def test_api_errors(people, ledger):
    client = client_for(people["fran"])
    bad = client.get("/api/v1/statements", {"user": "avery@example.test", "period": "2026-3"})
    assert bad.status_code == 400 and "period" in bad.json()["detail"]
    assert client.get("/api/v1/statements", {"user": "nobody@example.test", "period": "2026-03"}).status_code == 404
    ok = client.get("/api/v1/statements", {"user": "AVERY@example.test", "period": "2026-03"})
    assert ok.status_code == 200
    assert Client().get("/api/v1/statements", {"period": "2026-03"}).status_code == 401


# --- Performance -------------------------------------------------------------------------


def _page_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_statement_page_query_count_does_not_grow_with_lines(people, acme):
    avery, fran = people["avery"], people["fran"]
    for n in range(10):
        line(avery, MAR, list(PAYABLE_KINDS)[n % 10], "10.00", account=acme if n % 2 else None)
    ids = list(LedgerLine.objects.filter(person=avery).values_list("pk", flat=True))
    services.inquiry_raise(line=LedgerLine.objects.get(pk=ids[0]), person=avery, body="?")
    url = f"/comp/statements/{avery.pk}/2026-03/"
    client = client_for(fran)
    small = _page_queries(client, url)

    for n in range(50):
        extra = line(avery, MAR, list(PAYABLE_KINDS)[n % 10], "10.00", account=acme if n % 2 else None)
        if n % 5 == 0:
            services.inquiry_raise(line=extra, person=avery, body="?")
    large = _page_queries(client, url)

    assert small == large
    # session, user, MFA check (finance), the person in scope, then the statement itself:
    # approval, the ids of the lines listed (the first of each kind and those with an
    # inquiry), those lines with accounts, their inquiries, counts and totals per kind, the
    # totals aggregate, attainment.
    assert large == 11


# --- Property: the statement adds up -------------------------------------------------------

KINDS = st.sampled_from(LineKind.values)
AMOUNTS = st.decimals(min_value=Decimal("-99999.99"), max_value=Decimal("99999.99"), places=2)
MONTHS = st.sampled_from([dt.date(2025, 11, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 1), MAR])
RECOVERABLE = st.booleans()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(MONTHS, KINDS, AMOUNTS, RECOVERABLE), max_size=25))
def test_statement_totals_are_the_sums_of_the_ledger(people, lines):
    avery = people["avery"]
    with transaction.atomic():
        LedgerLine.objects.bulk_create(
            LedgerLine(
                person=avery,
                period=period,
                kind=kind,
                key=f"k{n}",
                amount=amount,
                inputs={"formula": str(amount), "recoverable": recoverable},
            )
            for n, (period, kind, amount, recoverable) in enumerate(lines)
        )
        totals = selectors.statement_view(person=avery, period=MAR).totals
        transaction.set_rollback(True)  # the ledger refuses DELETE: undo the example instead

    def total(keep) -> Decimal:
        return sum((a for p, k, a, r in lines if keep(p, k, r)), Decimal("0.00"))

    payable = set(PAYABLE_KINDS)
    assert totals.payable == total(lambda p, k, r: p == MAR and k in payable)
    assert totals.clawbacks == total(lambda p, k, r: p == MAR and k == "clawback")
    assert totals.held_balance == total(lambda p, k, r: p <= MAR and k == "hold")
    assert totals.draw_balance == total(lambda p, k, r: (k == "draw" and r) or k == "draw_recovery")
    assert totals.ytd == total(lambda p, k, r: p.year == 2026 and k in payable)


def test_the_same_inquiry_form_sent_twice_sends_one_message(people, ledger):
    import re

    avery = people["avery"]
    line_id = ledger["accelerator"].pk
    ae = client_for(avery)
    detail = text(ae.get(f"/comp/statements/lines/{line_id}/", **HTMX))
    token = re.search(r'name="submission" value="([0-9a-f-]{36})"', detail).group(1)
    data = {"body": "Which tier applies?", "submission": token}

    first, second = (ae.post(f"/comp/statements/lines/{line_id}/inquiries/", data, **HTMX) for _ in range(2))

    assert first.status_code == second.status_code == 200
    assert InquiryMessage.objects.filter(inquiry__line_id=line_id).count() == 1
    assert text(second).count("Which tier applies?") == 1


def test_line_inputs_read_as_words_money_and_percentages():
    from comp.views.statements import labelled_inputs

    rows = labelled_inputs(
        {
            "share": "0.5",
            "committed_arr": "32000.00",
            "base_rate": "0.10",
            "burn_floor": "0.25",
            "days": "90",
            "multiplier": "1.50",
            "plan_version_id": 7,
            "formula": "x",
        }
    )

    assert rows == [
        ("Share of the commission", "50.0%"),
        ("Committed ARR", "$32,000"),
        ("Base rate", "10.0%"),
        ("Burn floor", "25.0%"),
        ("Days", "90 days"),
        ("Multiplier", "1.5×"),
    ]


# --- The monthly close -------------------------------------------------------------------


def test_bulk_approval_skips_statements_with_an_open_inquiry(people, ledger):
    bea_line = LedgerLine.objects.get(person=people["bea"], period=MAR)
    services.inquiry_raise(line=bea_line, person=people["bea"], body="Is this all?")

    result = services.statements_approve_pending(viewer=people["fran"], period=MAR)

    assert [p.name for p in result.approved] == ["Avery Exec"]
    assert [p.name for p in result.with_inquiries] == ["Bea West"]
    assert set(Statement.objects.filter(period=MAR).values_list("person__name", "status")) == {
        ("Avery Exec", StatementStatus.APPROVED)
    }


def test_a_paid_month_changes_only_through_next_months_adjustments_and_its_payroll_file_matches_the_ledger(
    people, ledger
):
    services.statements_approve_pending(viewer=people["fran"], period=MAR)
    with pytest.raises(ApplicationError, match="paid after it ends"):
        services.statements_mark_paid(viewer=people["fran"], period=MAR, paid_on=dt.date(2026, 3, 31))
    assert services.statements_mark_paid(viewer=people["fran"], period=MAR, paid_on=dt.date(2026, 4, 5)) == 2

    [avery, bea] = services.payroll_rows(viewer=people["fran"], period=MAR)
    # Every line but the hold: 1,000 + 250 + 3,000 + 500 + 2,000 − 800 + 400 − 600 + 75.50 − 25.25.
    assert (avery["person"], avery["total"], avery["commission"], avery["clawback"]) == (
        "Avery Exec",
        Decimal("5800.25"),
        Decimal("1000.00"),
        Decimal("-600.00"),
    )
    assert "hold" not in avery and (avery["currency"], avery["paid_on"]) == ("USD", "2026-04-05")
    assert bea["total"] == Decimal("777.00")
    inquiry = services.inquiry_raise(line=ledger["spiff"], person=people["avery"], body="Was it the new region?")
    message = services.inquiry_answer(inquiry=inquiry, author=people["fran"], body="Yes.", adjustment=Decimal("50"))
    assert message.adjustment.period == APR  # March is paid: the change lands in April
    assert services.payroll_rows(viewer=people["fran"], period=MAR)[0]["total"] == Decimal("5800.25")


def test_finance_closes_a_month_from_the_statements_page_and_downloads_payroll(people, ledger):
    fran = client_for(people["fran"])

    board = text(fran.get("/comp/statements/", {"period": "2026-03"}))
    approved = fran.post("/comp/statements/close/approve/", {"period": "2026-03"}, follow=True)
    paid = fran.post("/comp/statements/close/paid/", {"period": "2026-03", "paid_on": "2026-04-05"}, follow=True)
    payroll = fran.get("/comp/statements/2026-03/payroll.csv")

    assert "<strong>0</strong> of 2 approved · <strong>2</strong> pending" in board
    assert "Approved 2 March 2026 statements." in text(approved)
    assert "2 approved March 2026 statements marked paid on 2026-04-05." in text(paid)
    rows = payroll.content.decode().splitlines()
    assert rows[0].startswith("person,email,employee_id,period,commission,accelerator")
    assert rows[1].startswith("Avery Exec,avery@example.test,,2026-03,1000.00,250.00,3000.00")
    assert rows[1].endswith(",5800.25,USD,2026-04-05")
    assert client_for(people["avery"]).get("/comp/statements/2026-03/payroll.csv").status_code == 403


def test_the_running_month_shows_no_approve_button_and_says_when_it_can(people):
    from comp.periods import month_start
    from revops.clock import today_utc

    running = month_start(today_utc())
    LedgerLine.objects.create(
        person=people["avery"], period=running, kind=LineKind.COMMISSION, key="c:now", amount=Decimal(1), inputs={}
    )
    page = text(client_for(people["fran"]).get(f"/comp/statements/{people['avery'].pk}/{running:%Y-%m}/"))

    assert "Approve statement" not in page and "is still running" in page


def test_a_big_statement_lists_the_first_lines_of_a_kind_and_every_line_with_an_inquiry(people, acme, monkeypatch):
    from comp.views import statements as statement_views

    monkeypatch.setattr(statement_views, "STATEMENT_LINES_SHOWN", 3)
    avery = people["avery"]
    lines = [line(avery, MAR, LineKind.COMMISSION, f"{100 + i}.00", account=acme) for i in range(6)]
    asked = services.inquiry_raise(line=lines[5], person=avery, body="Is the last deal in?").line
    client = client_for(avery)

    page = client.get(f"/comp/statements/{avery.pk}/2026-03/").content.decode()
    listed = [pk for pk in (ln.pk for ln in lines) if f'id="line-{pk}"' in page]
    assert listed == [lines[0].pk, lines[1].pk, lines[2].pk, asked.pk]
    assert "4 of 6 lines listed" in page and "List all 6" in page
    assert "$615.00" in html.unescape(page)  # the group's total counts all six: 100 + … + 105
    everything = client.get(f"/comp/statements/{avery.pk}/2026-03/?lines=all").content.decode()
    assert all(f'id="line-{ln.pk}"' in everything for ln in lines) and "lines listed" not in everything
    rows = list(csv.DictReader(io.StringIO(client.get(f"/comp/statements/{avery.pk}/2026-03.csv").content.decode())))
    assert sorted(int(r["line_id"]) for r in rows if r["kind"] == "commission") == [ln.pk for ln in lines]
