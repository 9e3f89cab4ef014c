"""The October review in headless Chromium, start to finish: a leader opens it (the numbers
freeze), adds two sales patterns and an action item; a product manager, in a browser of
their own, adds a roadmap decision whose evidence chart Plotly draws; the leader
finalizes; an AE then reads the final review and its print version, with no edit
controls, and cannot see another month's draft. A second test marks an action done
through the htmx status select, in place."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Activity, OwnerRole, Ownership
from reviews import services
from reviews.models import ActionItem, ActionStatus, Review, ReviewStatus
from revops.models import Role
from revops.templatetags.fmt import money, money_short
from tests.browser import DEFAULT_TIMEOUT_MS, log_in, screenshot
from tests.factories import UserFactory
from tests.reviews.conftest import build_review_company
from usage.models import PortfolioMetrics

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEP = dt.date(2026, 9, 1)
OCT = dt.date(2026, 10, 1)
OCT_END = dt.date(2026, 10, 31)


def _company(ae):
    """test_workflow's company, with metrics at September's and October's ends and real-sounding calls."""
    return build_review_company(
        ae,
        notes=(
            "Asked for a batch price; nightly jobs make most of their calls.",
            "Moving the nightly sync to the Batch API once it is priced.",
            "Would commit more if batch calls were cheaper.",
        ),
        refreshed=(dt.date(2026, 9, 30), OCT_END),
    )


def _activity_label(activity: Activity) -> str:
    """The option text of an activity in the pattern form's multi-select."""
    return (
        f"{activity.occurred_on} · {activity.account.name} · {activity.get_kind_display()} "
        f"by {activity.person.name}: {activity.notes}"
    )


def _add_pattern(page: Page, *, title: str, detail: str, activities: list[Activity], other_accounts: str = "") -> None:
    page.locator("#sales-patterns").get_by_role("link", name="Add a pattern").click()
    expect(page.locator("h1")).to_contain_text("a sales pattern")
    form = page.locator("main form.review-form")
    form.get_by_label("Title").fill(title)
    form.get_by_label("Detail").fill(detail)
    form.locator("select[name=activities]").select_option(label=[_activity_label(a) for a in activities])
    form.get_by_label("Other accounts").fill(other_accounts)
    form.get_by_role("button", name="Save the pattern").click()
    expect(page).to_have_url(re.compile(r"/reviews/2026-10/$"))


def test_leader_and_product_prepare_finalize_and_an_ae_reads_the_october_review(
    logged_in_page, live_server, new_context
):
    leader = UserFactory(role=Role.LEADER, name="Lena Leader", email="lena@example.test")
    product = UserFactory(role=Role.PRODUCT, name="Pat Product", email="pat@example.test")
    ae = UserFactory(role=Role.AE, name="Avery Exec", email="avery@example.test")
    company = _company(ae)
    acts = company["activities"]
    # Another month's review, still a draft: for the people preparing it, not for AEs.
    services.open_review(SEP, leader)
    frozen = PortfolioMetrics.objects.get(as_of=OCT_END, segment="")
    assert frozen.accounts == 3
    review_url = f"{live_server.url}/reviews/2026-10/"

    # --- The leader opens October's review: the numbers freeze ------------------------------
    page = logged_in_page(leader)
    page.goto(f"{live_server.url}/reviews/")
    expect(page.locator("h1")).to_have_text("Monthly cross-functional review")
    expect(page.locator("#reviews")).to_contain_text("September 2026")
    page.get_by_label("Open the review of").fill("2026-10")
    page.get_by_role("button", name="Open review").click()
    expect(page).to_have_url(review_url)
    expect(page.locator("h1")).to_contain_text("October 2026 review")
    expect(page.locator("h1 .status")).to_have_text("Being prepared")
    expect(page.locator("#messages")).to_contain_text("numbers are frozen as of 2026-10-31")
    company_row = page.locator("#review-numbers tr.total")
    expect(company_row.locator("th")).to_have_text("Company")
    expect(company_row.locator("td").nth(0)).to_have_text("3")  # accounts
    expect(company_row.locator("td").nth(1)).to_have_text(money_short(frozen.run_rate))  # run rate
    finalize_button = page.get_by_role("button", name="Finalize the review")
    expect(finalize_button).to_be_disabled()
    expect(page.locator("#finalize .errorlist")).to_contain_text("Sales needs 2–3 patterns; there are 0.")
    screenshot(page, "review-opened")

    # --- Two sales patterns through the pattern form ----------------------------------------
    _add_pattern(
        page,
        title="Nightly jobs want a batch price",
        detail="Two customers run most of their calls from nightly jobs and asked for a batch price.",
        activities=acts[:2],
    )
    _add_pattern(
        page,
        title="Cheaper batch calls unlock commitments",
        detail="SMB would commit more if batch calls were cheaper.",
        activities=acts[2:],
        other_accounts="ACC-1",
    )
    patterns = page.locator("#sales-patterns article.review-item")
    expect(patterns).to_have_count(2)
    expect(patterns.nth(0)).to_contain_text("1. Nightly jobs want a batch price")
    expect(patterns.nth(0)).to_contain_text("Account 1")
    expect(patterns.nth(0)).to_contain_text("Moving the nightly sync to the Batch API once it is priced.")
    expect(patterns.nth(1)).to_contain_text("2. Cheaper batch calls unlock commitments")
    expect(patterns.nth(1).locator("p.small")).to_contain_text("ACC-1")  # the other account is cited
    expect(page.locator("#sales-patterns h2")).to_contain_text("2 of 2–3")
    expect(finalize_button).to_be_disabled()  # product still owes a decision
    expect(page.locator("#finalize .errorlist")).to_have_text("Product needs 1–2 roadmap decisions; there are 0.")

    # --- An action item, then marked done through the htmx status select ----------------------
    add_action = page.locator("#add-action")
    add_action.get_by_label("Action").fill("Price batch calls")
    add_action.get_by_label("Owner").select_option(label="Pat Product")
    add_action.get_by_label("Due").fill("2026-11-15")
    add_action.get_by_role("button", name="Add the action").click()
    expect(page).to_have_url(review_url)
    item = ActionItem.objects.get(review__month=OCT)
    row = page.locator(f"#action-{item.pk}")
    expect(row.locator("td:not(:last-child)")).to_have_text(
        ["Price batch calls", "Pat Product", "2026-11-15", "2026-10"]
    )
    expect(row.get_by_label("Status of Price batch calls")).to_have_value("open")
    screenshot(page, "review-leader-patterns-and-action")

    # --- The product manager, in their own browser, adds a roadmap decision --------------------
    pm_context = new_context()
    pm_context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    pm_context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    pm = log_in(pm_context.new_page(), live_server.url, product)
    pm.goto(review_url)
    expect(pm.locator("#sales-patterns article.review-item")).to_have_count(2)
    expect(pm.get_by_role("link", name="Add a pattern")).to_have_count(0)
    expect(pm.locator("#sales-patterns").get_by_role("link", name="Edit")).to_have_count(0)
    pm.locator("#product-decisions").get_by_role("link", name="Add a decision").click()
    expect(pm.locator("h1")).to_contain_text("a roadmap decision")
    form = pm.locator("main form.review-form")
    form.get_by_label("Title").fill("Price the Batch API separately")
    form.get_by_label("Rationale").fill("Batch calls grew every month since the release; price them on their own.")
    form.get_by_label("API calls", exact=True).check()
    form.get_by_label("Batch API (2026-09-15)").check()
    expect(form.get_by_label("Attribution window (days)")).to_have_value("28")
    form.get_by_role("button", name="Save the decision").click()
    expect(pm).to_have_url(review_url)
    decision = pm.locator("#product-decisions article.review-item")
    expect(decision).to_have_count(1)
    expect(decision).to_contain_text("1. Price the Batch API separately")
    expect(decision.locator(".attribution")).to_contain_text("Batch API")
    expect(decision.locator(".attribution")).to_contain_text("28 days each side")
    usage_chart = decision.locator("div[data-chart$='-usage']")
    expect(usage_chart).to_have_attribute("data-drawn", "1")
    expect(usage_chart).to_have_class(re.compile(r"\bjs-plotly-plot\b"))  # Plotly drew into it
    expect(usage_chart.locator("svg.main-svg").first).to_be_visible()
    expect(usage_chart.locator(".gtitle")).to_have_text("Monthly revenue of the usage cited")
    expect(pm.locator("#finalize")).to_contain_text("Leaders and finance finalize.")
    expect(pm.get_by_role("button", name="Finalize the review")).to_have_count(0)
    screenshot(pm, "review-product-decision")

    # --- The leader reloads and finalizes with a summary ---------------------------------------
    page.reload()
    expect(page.locator("#product-decisions article.review-item")).to_have_count(1)
    expect(page.locator("#finalize .errorlist")).to_have_count(0)
    expect(finalize_button).to_be_enabled()
    page.get_by_label("Summary").fill("Batch pricing is the theme: sales heard it, usage shows it.")
    finalize_button.click()
    expect(page).to_have_url(review_url)
    expect(page.locator("h1 .status")).to_have_text("Final")
    expect(page.locator("#messages")).to_contain_text("The October 2026 review is final")
    expect(page.locator("main")).to_contain_text("by Lena Leader: it reads exactly as it did then.")
    expect(page.locator("#finalize")).to_have_count(0)
    expect(page.get_by_role("link", name="Add a pattern")).to_have_count(0)
    expect(page.locator("#add-action")).to_have_count(0)
    screenshot(page, "review-final-leader")
    review = Review.objects.get(month=OCT)
    assert (review.status, review.finalized_by) == (ReviewStatus.FINAL, leader)
    assert review.snapshot["metrics"][-1]["run_rate"] == str(frozen.run_rate)

    # --- An AE reads the final review: no edit controls ----------------------------------------
    ae_context = new_context()
    ae_context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    ae_context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    reader = log_in(ae_context.new_page(), live_server.url, ae)
    reader.goto(f"{live_server.url}/reviews/")
    listed = reader.locator("#reviews tbody tr")
    expect(listed).to_have_count(1)  # September's draft is not listed
    expect(listed).to_contain_text("October 2026")
    expect(listed).to_contain_text("Final")
    expect(reader.get_by_role("button", name="Open review")).to_have_count(0)
    listed.get_by_role("link", name="October 2026").click()
    expect(reader).to_have_url(review_url)
    expect(reader.locator("h1 .status")).to_have_text("Final")
    main = reader.locator("main")
    expect(main).to_contain_text("Batch pricing is the theme: sales heard it, usage shows it.")
    expect(reader.locator("#sales-patterns article.review-item")).to_have_count(2)
    expect(main).to_contain_text("Nightly jobs want a batch price")
    expect(main).to_contain_text("Cheaper batch calls unlock commitments")
    expect(main).to_contain_text("Price the Batch API separately")
    expect(reader.locator("#review-numbers tr.total td").nth(1)).to_have_text(money_short(frozen.run_rate))
    expect(reader.locator(f"#action-{item.pk} td")).to_have_text(
        ["Price batch calls", "Pat Product", "2026-11-15", "2026-10", "Open"]
    )
    for name in ("Add a pattern", "Add a decision", "Edit"):
        expect(reader.get_by_role("link", name=name, exact=True)).to_have_count(0)
    expect(reader.get_by_role("button", name="Remove")).to_have_count(0)
    expect(main.locator("form")).to_have_count(0)
    expect(main.locator("select, textarea")).to_have_count(0)
    expect(reader.locator("div[data-chart$='-usage'].js-plotly-plot")).to_have_count(1)
    screenshot(reader, "review-final-ae")

    # The print version: the same content, no forms, tables instead of charts.
    reader.goto(f"{review_url}print/")
    expect(reader.locator("h1")).to_have_text("October 2026 cross-functional review")
    body = reader.locator("body")
    expect(body).to_contain_text("Final, ")
    expect(body).to_contain_text("Nightly jobs want a batch price")
    expect(body).to_contain_text("Cheaper batch calls unlock commitments")
    expect(body).to_contain_text("Price the Batch API separately")
    expect(body).to_contain_text("Batch pricing is the theme")
    expect(reader.locator("form")).to_have_count(0)
    expect(reader.locator("[data-chart]")).to_have_count(0)
    expect(reader.locator("#product-decisions table")).to_contain_text("Meter API calls")
    screenshot(reader, "review-print-ae")

    # Another month's draft is not there for an AE, on the page or in print.
    for path in ("/reviews/2026-09/", "/reviews/2026-09/print/"):
        response = reader.goto(live_server.url + path)
        assert response is not None and response.status == 404, path
        expect(reader.locator("body")).not_to_contain_text("September 2026")


def test_leader_marks_an_action_done_in_place_with_htmx(logged_in_page, live_server):
    leader = UserFactory(role=Role.LEADER, name="Lena Leader", email="lena@example.test")
    product = UserFactory(role=Role.PRODUCT, name="Pat Product", email="pat@example.test")
    _company(UserFactory(role=Role.AE, name="Avery Exec"))
    review = services.open_review(OCT, leader)
    item = services.add_action(review, leader, title="Price batch calls", owner=product, due_on=dt.date(2026, 11, 15))

    page = logged_in_page(leader)
    page.goto(f"{live_server.url}/reviews/2026-10/")
    status = page.locator(f"#action-{item.pk}").get_by_label("Status of Price batch calls")
    expect(status).to_have_value("open")
    page.evaluate("() => { window.__noReload = true; }")
    status.select_option("done")
    with page.expect_response(lambda r: f"/actions/{item.pk}/status/" in r.url) as response:
        page.locator(f"#action-{item.pk}").get_by_role("button", name="Save").click()
    assert response.value.request.headers.get("hx-request") == "true"
    assert response.value.status == 200
    # The row is swapped in place (a new element, the page not reloaded) and reads "done".
    expect(page.locator(f"#action-{item.pk}").get_by_label("Status of Price batch calls")).to_have_value("done")
    expect(page.locator(f"#action-{item.pk}")).to_have_count(1)
    assert page.evaluate("() => window.__noReload") is True
    assert ActionItem.objects.get(pk=item.pk).status == ActionStatus.DONE
    screenshot(page, "review-action-done")

    page.reload()
    expect(page.locator(f"#action-{item.pk}").get_by_label("Status of Price batch calls")).to_have_value("done")


def test_top_mover_amounts_are_whole_and_inside_their_column(logged_in_page, live_server):
    """Long account names and three owners each: the account cell wraps and every amount
    (the full figure, "+$118,893") stays inside its half of the section."""
    leader = UserFactory(role=Role.LEADER, name="Lena Leader", email="lena@example.test")
    ae = UserFactory(role=Role.AE, name="Avery Exec")
    company = _company(ae)
    for i, account in enumerate(company["accounts"], start=1):
        account.name = f"Consolidated Interplanetary Logistics and Holdings Division {i}"
        account.save(update_fields=["name"])
        for role, name in ((OwnerRole.CSM, "Casey Success-Longname"), (OwnerRole.EXPAND_AE, "Sam Patel-Longname")):
            Ownership.objects.create(
                account=account, person=UserFactory(name=f"{name} {i}"), role=role, start_on=dt.date(2026, 8, 1)
            )
    review = services.open_review(OCT, leader)
    expected = [f"+{money(Decimal(m['net_new_arr']))}" for m in review.snapshot["movers"]["up"]]

    page = logged_in_page(leader)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/reviews/2026-10/")
    amounts = page.locator("table.movers-up td.amount")
    expect(amounts).to_have_text(expected)
    overflow = page.evaluate(
        """() => Array.from(document.querySelectorAll('table.review-movers td.amount')).map(td => {
            const column = td.closest('.review-grid > *').getBoundingClientRect();
            const cell = td.getBoundingClientRect();
            return {right: cell.right - column.right, clipped: td.scrollWidth - td.clientWidth};
        })"""
    )
    assert overflow and all(o["right"] <= 0.5 and o["clipped"] <= 0 for o in overflow), overflow
    screenshot(page, "review-top-movers")
