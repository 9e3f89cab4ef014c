"""The account page (issue #4): the shell, its activities and plan, and who may do what."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, AccountPlan, Activity, ActivityKind, Contract, OwnerRole, Ownership, Segment
from accounts.services import account_plan_update, activity_log
from revops.errors import ApplicationError
from revops.models import Role

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
TODAY = timezone.localdate()


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


@pytest.fixture
def holdings(db):
    return Account.objects.create(external_id="GLOBEX-HQ", name="Globex Holdings", segment=Segment.ENTERPRISE)


@pytest.fixture
def globex(holdings):
    return Account.objects.create(
        external_id="GLOBEX",
        name="Globex",
        parent=holdings,
        segment=Segment.ENTERPRISE,
        region="EMEA",
        industry="Manufacturing",
    )


@pytest.fixture
def division(globex):
    return Account.objects.create(external_id="GLOBEX-EU", name="Globex Europe", parent=globex, segment=Segment.SMB)


@pytest.fixture
def csm(make_user):
    return make_user(Role.CSM, name="Casey Success", email="csm@example.test")


@pytest.fixture
def former_ae(make_user):
    return make_user(Role.AE, name="Flynn Former", email="former@example.test")


@pytest.fixture
def other_ae(make_user):
    return make_user(Role.AE, name="Olive Outsider", email="other@example.test")


@pytest.fixture
def leader(make_user):
    return make_user(Role.LEADER, name="Lee Leader", email="leader@example.test")


@pytest.fixture
def manager(make_user, team):
    """An AE who manages the owner's team: sees the account, does not own it."""
    person = make_user(Role.AE, name="Morgan Manager", email="manager@example.test")
    team.manager = person
    team.save()
    return person


@pytest.fixture
def owned(globex, division, ae, csm, former_ae):
    Ownership.objects.create(
        account=globex, person=former_ae, role=OwnerRole.LAND_AE, start_on=days_ago(400), end_on=days_ago(200)
    )
    Ownership.objects.create(account=globex, person=ae, role=OwnerRole.LAND_AE, start_on=days_ago(199))
    Ownership.objects.create(account=globex, person=csm, role=OwnerRole.CSM, start_on=days_ago(100))
    first = Contract.objects.create(
        external_id="GLOBEX-C1",
        account=globex,
        pricing_model="commit",
        signed_on=days_ago(500),
        start_on=days_ago(400),
        end_on=days_ago(36),
        committed_arr=Decimal("120000"),
        tcv=Decimal("120000"),
        deal_desk_estimate=Decimal("90000"),
        ae_estimate=Decimal("140000"),
    )
    Contract.objects.create(
        external_id="GLOBEX-C2",
        account=globex,
        pricing_model="hybrid",
        signed_on=days_ago(40),
        start_on=days_ago(35),
        end_on=days_ago(35) + dt.timedelta(days=729),
        committed_arr=Decimal("180000"),
        tcv=Decimal("360000"),
        included_units=Decimal("5000000"),
        included_meter="api-calls",
        base_fee=Decimal("2000"),
        amends=first,
    )
    return globex


def log(account, person, n: int, *, start: int = 1) -> None:
    Activity.objects.bulk_create(
        Activity(
            account=account, person=person, occurred_on=days_ago(start + i), kind="call", notes=f"call {start + i}"
        )
        for i in range(n)
    )


def page_url(account: Account) -> str:
    return reverse("accounts:account", args=[account.external_id])


def activities_url(account: Account) -> str:
    return reverse("accounts:activities", args=[account.external_id])


def plan_url(account: Account) -> str:
    return reverse("accounts:plan", args=[account.external_id])


# --- The shell ----------------------------------------------------------------------------


def test_owner_sees_facts_hierarchy_owners_and_contracts(client, owned, division, ae):
    client.force_login(ae)

    response = client.get(page_url(owned))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Globex</h1>" in html
    assert "GLOBEX" in html and "Enterprise" in html and "EMEA" in html and "Manufacturing" in html
    # The parent is outside the AE's scope: neither named nor linked.
    assert "Globex Holdings" not in html and "GLOBEX-HQ" not in html
    assert '<span title="Outside your accounts">…</span>' in html
    assert "outside your accounts" in html
    assert f'<a href="{page_url(division)}">Globex Europe</a>' in html
    # Owner history: the former land AE stays listed; the current ones are marked.
    assert "Flynn Former" in html and "Avery Exec" in html and "Casey Success" in html
    assert len(re.findall(r'<li class="current">', html)) == 2
    # Contracts with the amends chain both ways.
    assert 'amends <span class="mono">GLOBEX-C1</span>' in html
    assert 'amended by <span class="mono">GLOBEX-C2</span>' in html
    assert "$180,000" in html and "$360,000" in html and "5,000,000" in html


def test_shell_fetches_each_usage_panel_on_load_with_a_link_fallback(client, owned, ae):
    client.force_login(ae)

    html = client.get(page_url(owned) + "?as_of=2026-01-31").content.decode()

    for name in ("metrics", "usage_chart"):
        url = reverse(f"usage:panel_{name}", args=["GLOBEX"]) + "?as_of=2026-01-31"
        assert f'hx-get="{url}" hx-trigger="load"' in html
        assert f'<a href="{url}">' in html
    alerts = reverse("usage:panel_alerts", args=["GLOBEX"])
    assert f'hx-get="{alerts}" hx-trigger="load"' in html


def test_leader_sees_a_parent_with_links_to_every_division(client, owned, division, leader):
    client.force_login(leader)

    html = client.get(page_url(owned.parent)).content.decode()
    assert f'<a href="{page_url(owned)}">Globex</a>' in html
    assert "none (top level)" in html

    html = client.get(page_url(division)).content.decode()
    assert f'<a href="{page_url(owned.parent)}">Globex Holdings</a>' in html  # breadcrumb, root first
    assert html.index("Globex Holdings") < html.index(f'<a href="{page_url(owned)}">Globex</a>')


def test_children_outside_scope_are_not_listed(client, holdings, owned, ae, make_user):
    sibling = Account.objects.create(external_id="INITECH", name="Initech", parent=holdings, segment=Segment.SMB)
    Ownership.objects.create(account=holdings, person=make_user(Role.AE), role=OwnerRole.LAND_AE, start_on=days_ago(10))
    # The AE owns Globex only: on the parent's page (they cannot see it) they get 404,
    # and Initech never appears on their pages.
    client.force_login(ae)

    assert client.get(page_url(holdings)).status_code == 404
    assert "Initech" not in client.get(page_url(owned)).content.decode()
    assert client.get(page_url(sibling)).status_code == 404


# --- Access -------------------------------------------------------------------------------


def _every_url(account: Account) -> list[tuple[str, str]]:
    ext = account.external_id
    return [
        ("get", page_url(account)),
        ("get", activities_url(account)),
        ("post", activities_url(account)),
        ("get", plan_url(account)),
        ("post", plan_url(account)),
        ("get", reverse("usage:panel_metrics", args=[ext])),
        ("get", reverse("usage:panel_usage_chart", args=[ext])),
        ("get", reverse("usage:panel_alerts", args=[ext])),
    ]


@pytest.mark.parametrize("htmx", [False, True])
def test_an_ae_who_does_not_own_the_account_gets_404_everywhere(client, owned, other_ae, htmx):
    client.force_login(other_ae)
    extra = HTMX if htmx else {}

    for method, url in _every_url(owned):
        data = {"occurred_on": TODAY.isoformat(), "kind": "call"} if method == "post" else None
        response = getattr(client, method)(url, data, **extra)
        assert response.status_code == 404, (method, url)
    assert not Activity.objects.exists()
    assert not AccountPlan.objects.exists()


def test_unknown_account_is_404_for_a_leader(client, leader):
    client.force_login(leader)

    assert client.get("/accounts/NOPE/").status_code == 404


# --- Activities ---------------------------------------------------------------------------


def test_activities_are_newest_first_and_paginated_by_20(client, owned, ae):
    log(owned, ae, 25)
    client.force_login(ae)

    html = client.get(page_url(owned)).content.decode()
    notes = re.findall(r"call (\d+)", html)
    assert notes == [str(n) for n in range(1, 21)]
    assert "Page 1 of 2 · 25 activities" in html

    fragment = client.get(activities_url(owned) + "?page=2", **HTMX).content.decode()
    assert "<html" not in fragment
    assert re.findall(r"call (\d+)", fragment) == ["21", "22", "23", "24", "25"]
    assert 'id="activity-list"' in fragment


def test_activity_page_without_htmx_goes_to_the_page(client, owned, ae):
    client.force_login(ae)

    response = client.get(activities_url(owned) + "?page=2")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/GLOBEX/?page=2#activities"


@pytest.mark.parametrize("who", ["ae", "csm", "leader", "manager"])
def test_anyone_who_sees_the_account_logs_an_activity_as_themself(client, owned, who, request):
    person = request.getfixturevalue(who)
    client.force_login(person)

    response = client.post(
        activities_url(owned),
        {
            "occurred_on": days_ago(1).isoformat(),
            "kind": "meeting",
            "notes": "Talked about the new workload",
            "tags": "Pricing, new-workload, pricing",
        },
        **HTMX,
    )

    assert response.status_code == 200
    activity = Activity.objects.get()
    assert (activity.account, activity.person, activity.kind, activity.occurred_on) == (
        owned,
        person,
        "meeting",
        days_ago(1),
    )
    assert activity.tags == ["pricing", "new-workload"]
    html = response.content.decode()
    # A fresh form replaces the old one; the new activity is prepended out of band.
    assert 'id="activity-form"' in html
    assert 'hx-swap-oob="afterbegin:#activity-items"' in html
    assert "Talked about the new workload" in html and person.name in html
    assert 'value="Talked about' not in html  # the form is empty again


def test_activity_without_htmx_redirects_back_to_the_page(client, owned, ae):
    client.force_login(ae)

    response = client.post(activities_url(owned), {"occurred_on": TODAY.isoformat(), "kind": "note"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/GLOBEX/#activities"
    assert Activity.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "call"}, "occurred_on", "Enter the date of the conversation."),
        ({"occurred_on": "yesterday", "kind": "call"}, "occurred_on", "Enter a valid date (YYYY-MM-DD)."),
        ({"occurred_on": TODAY.isoformat(), "kind": "chat"}, "kind", "Unknown activity kind “chat”."),
        (
            {"occurred_on": (TODAY + dt.timedelta(days=2)).isoformat(), "kind": "call"},
            "occurred_on",
            "The date cannot be more than 1 day in the future.",
        ),
    ],
)
def test_activity_validation_errors_are_shown_beside_the_field(client, owned, ae, data, field, message):
    client.force_login(ae)

    response = client.post(activities_url(owned), data, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<ul class="errorlist" id="id_{field}_errors"><li>{message}</li></ul>' in html
    assert "hx-swap-oob" not in html
    assert not Activity.objects.exists()


def test_activity_dated_tomorrow_is_accepted(client, owned, ae):
    client.force_login(ae)

    client.post(
        activities_url(owned), {"occurred_on": (TODAY + dt.timedelta(days=1)).isoformat(), "kind": "call"}, **HTMX
    )

    assert Activity.objects.get().occurred_on == TODAY + dt.timedelta(days=1)


def test_activity_errors_without_htmx_render_the_page_with_the_messages(client, owned, ae):
    client.force_login(ae)

    response = client.post(activities_url(owned), {"kind": "call"})

    assert response.status_code == 422
    assert "Enter the date of the conversation." in response.content.decode()


def test_activity_log_service_checks_kind_and_date(owned, ae):
    with pytest.raises(ApplicationError, match=re.escape("Unknown activity kind “chat”.")):
        activity_log(account=owned, person=ae, occurred_on=TODAY, kind="chat", today=TODAY)
    with pytest.raises(ApplicationError, match=re.escape("The date cannot be more than 1 day in the future.")):
        activity_log(account=owned, person=ae, occurred_on=TODAY + dt.timedelta(days=2), kind="call", today=TODAY)
    with pytest.raises(ApplicationError, match=re.escape("At most 10 tags.")):
        activity_log(account=owned, person=ae, occurred_on=TODAY, kind="call", tags=[f"t{n}" for n in range(11)])

    activity = activity_log(account=owned, person=ae, occurred_on=TODAY, kind=ActivityKind.QBR, notes="  QBR  ")
    assert activity.notes == "QBR"


# --- The plan -----------------------------------------------------------------------------

PLAN = {
    "usage_baseline": "150000",
    "growth_target_pct": "25",
    "expansion_opportunities": "EU rollout",
    "value_realization": "Weekly office hours",
    "stakeholders": "CTO, Head of data",
    "risks": "Budget freeze",
    "next_review_on": "2027-01-15",
}


def test_everyone_who_sees_the_account_reads_the_plan(client, owned, csm, leader):
    account_plan_update(
        account=owned,
        updated_by=csm,
        usage_baseline=Decimal("150000"),
        growth_target=Decimal("0.25"),
        expansion_opportunities="EU rollout",
    )
    client.force_login(leader)

    html = client.get(page_url(owned)).content.decode()

    assert "$150,000" in html and "25%" in html and "EU rollout" in html and "by Casey Success" in html
    assert "?edit=1" not in html  # no edit button for a reader


@pytest.mark.parametrize("who", ["ae", "csm"])
def test_current_owners_edit_the_plan_inline(client, owned, who, request):
    person = request.getfixturevalue(who)
    client.force_login(person)

    form = client.get(plan_url(owned) + "?edit=1", **HTMX)
    assert form.status_code == 200
    assert 'hx-post="/accounts/GLOBEX/plan/"' in form.content.decode()

    response = client.post(plan_url(owned), PLAN, **HTMX)

    assert response.status_code == 200
    plan = AccountPlan.objects.get(account=owned)
    assert plan.usage_baseline == Decimal("150000")
    assert plan.growth_target == Decimal("0.25")
    assert plan.next_review_on == dt.date(2027, 1, 15)
    assert plan.updated_by == person
    html = response.content.decode()
    assert "<form" not in html and "Budget freeze" in html and f"by {person.name}" in html


def test_an_admin_edits_any_plan(client, owned, make_user, with_totp):
    admin = make_user(Role.ADMIN)
    with_totp(admin)
    client.force_login(admin)

    assert client.post(plan_url(owned), PLAN, **HTMX).status_code == 200
    assert AccountPlan.objects.get().updated_by == admin


@pytest.mark.parametrize("who", ["leader", "manager", "former_ae"])
def test_people_who_only_see_the_account_cannot_edit_its_plan(client, owned, who, request):
    person = request.getfixturevalue(who)
    if who == "former_ae":
        # Still sees it through a current expand role on the division only.
        Ownership.objects.create(
            account=Account.objects.get(external_id="GLOBEX-EU"),
            person=person,
            role=OwnerRole.EXPAND_AE,
            start_on=days_ago(5),
        )
        client.force_login(person)
        assert client.get(page_url(owned)).status_code == 404  # a division's owner does not see the parent
        return
    client.force_login(person)

    assert client.get(page_url(owned)).status_code == 200
    assert client.get(plan_url(owned) + "?edit=1", **HTMX).status_code == 403
    assert client.post(plan_url(owned), PLAN, **HTMX).status_code == 403
    assert client.post(plan_url(owned), PLAN).status_code == 403
    assert not AccountPlan.objects.exists()


def test_an_owner_whose_period_ended_cannot_edit(client, owned, former_ae, ae):
    # The former land AE moved to expand on the account, then that ended too: no rights.
    Ownership.objects.create(
        account=owned, person=former_ae, role=OwnerRole.EXPAND_AE, start_on=days_ago(60), end_on=days_ago(1)
    )
    Ownership.objects.create(account=owned, person=ae, role=OwnerRole.EXPAND_AE, start_on=TODAY)
    client.force_login(former_ae)

    assert client.post(plan_url(owned), PLAN, **HTMX).status_code == 404  # out of scope today as well


def test_plan_errors_are_shown_in_the_form(client, owned, ae):
    client.force_login(ae)

    response = client.post(plan_url(owned), {**PLAN, "growth_target_pct": "2000", "usage_baseline": "-5"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        '<ul class="errorlist" id="id_usage_baseline_errors"><li>The usage baseline cannot be negative.</li></ul>'
        in html
    )
    assert not AccountPlan.objects.exists()

    response = client.post(plan_url(owned), {**PLAN, "growth_target_pct": "2000"}, **HTMX)
    assert "The growth target must be between −100% and 1000%." in response.content.decode()
    assert not AccountPlan.objects.exists()


def test_plan_without_htmx_redirects(client, owned, ae):
    client.force_login(ae)

    assert client.get(plan_url(owned) + "?edit=1")["Location"] == "/accounts/GLOBEX/?edit=plan#plan"
    page = client.get(page_url(owned) + "?edit=plan").content.decode()
    assert 'name="growth_target_pct"' in page
    response = client.post(plan_url(owned), PLAN)
    assert response["Location"] == "/accounts/GLOBEX/#plan"
    assert AccountPlan.objects.get().risks == "Budget freeze"


# --- Query counts -------------------------------------------------------------------------


def _count(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(queries)


def test_page_queries_do_not_grow_with_contracts_activities_children_or_owners(
    client, owned, ae, make_user, django_assert_max_num_queries
):
    log(owned, ae, 1)  # an empty page skips the page query; compare like with like
    client.force_login(ae)
    url = page_url(owned)
    _count(client, url)  # warm the session and the user
    small = _count(client, url)

    log(owned, ae, 30, start=2)
    for n in range(6):
        Contract.objects.create(
            external_id=f"X-{n}",
            account=owned,
            pricing_model="commit",
            signed_on=TODAY,
            start_on=TODAY,
            end_on=TODAY,
            amends=Contract.objects.get(external_id="GLOBEX-C2"),
        )
    for n in range(5):
        Account.objects.create(external_id=f"DIV-{n}", name=f"Division {n}", parent=owned, segment=Segment.SMB)
    for n in range(4):
        Ownership.objects.create(
            account=owned,
            person=make_user(Role.CSM),
            role=OwnerRole.EXPAND_AE,
            start_on=days_ago(300 - n * 20),
            end_on=days_ago(281 - n * 20),
        )

    large = _count(client, url)
    assert large == small
    with django_assert_max_num_queries(14):
        client.get(url)
    with django_assert_max_num_queries(8):
        client.get(activities_url(owned) + "?page=2", **HTMX)


def test_activity_post_queries_are_constant(client, owned, ae, django_assert_max_num_queries):
    log(owned, ae, 30)
    client.force_login(ae)

    with django_assert_max_num_queries(10):
        client.post(activities_url(owned), {"occurred_on": TODAY.isoformat(), "kind": "call"}, **HTMX)


# --- In the browser -----------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_the_browser_panels_load_activities_prepend_and_the_plan_saves_inline(
    logged_in_page, live_server, owned, ae
):
    from playwright.sync_api import expect

    from tests.browser import screenshot
    from usage.models import DailyRollup, Meter

    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    for n in range(3):
        DailyRollup.objects.create(
            account=owned, meter=meter, day=days_ago(n), quantity=1, revenue=Decimal(100 + n), event_count=1
        )
    log(owned, ae, 1)
    page = logged_in_page(ae)
    page.goto(live_server.url + page_url(owned))
    address = page.url

    # The usage panels arrive by htmx; the chart is drawn by charts.js after the swap.
    expect(page.locator("#metrics-panel")).to_contain_text("No metrics yet.")
    expect(page.locator("#usage-panel .js-plotly-plot")).to_have_count(1)
    expect(page.locator("#alerts-panel")).to_contain_text("No alerts on this account.")

    form = page.locator("#activity-form")
    form.locator("input[name=occurred_on]").fill("")
    form.get_by_role("button", name="Log it").click()
    expect(page.locator("#id_occurred_on_errors")).to_have_text("Enter the date of the conversation.")

    form = page.locator("#activity-form")
    form.locator("input[name=occurred_on]").fill(TODAY.isoformat())
    form.locator("select[name=kind]").select_option("meeting")
    form.locator("textarea[name=notes]").fill("Champion wants the batch API")
    form.get_by_role("button", name="Log it").click()
    items = page.locator("#activity-items > li")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Champion wants the batch API")
    expect(page.locator("#id_occurred_on_errors")).to_have_count(0)
    assert page.url == address  # no page load

    page.locator("#plan").get_by_role("link", name="Write the plan").click()
    page.locator("#plan textarea[name=risks]").fill("Budget freeze in Q1")
    page.locator("#plan").get_by_role("button", name="Save plan").click()
    expect(page.locator("#plan")).to_contain_text("Budget freeze in Q1")
    expect(page.locator("#plan form")).to_have_count(0)
    screenshot(page, "account-page")
    assert AccountPlan.objects.get().updated_by == ae


def _token(html: str) -> str:
    import re

    return re.search(r'name="submission" value="([0-9a-f-]{36})"', html).group(1)


def test_the_same_activity_form_sent_twice_logs_one_activity(client, owned, ae):
    """A double click or a reload re-posts the form: the second post is recognised by the
    form's one-time token and logs nothing (it used to log the conversation twice)."""
    client.force_login(ae)
    form = client.get(page_url(owned)).content.decode()
    data = {"occurred_on": days_ago(1).isoformat(), "kind": "call", "notes": "Renewal chat", "submission": _token(form)}

    first = client.post(activities_url(owned), data, **HTMX)
    second = client.post(activities_url(owned), data, **HTMX)
    without_htmx = client.post(activities_url(owned), data)

    assert Activity.objects.filter(notes="Renewal chat").count() == 1
    assert first.status_code == second.status_code == 200 and without_htmx.status_code == 302
    assert 'hx-swap-oob="afterbegin:#activity-items"' not in second.content.decode()  # nothing new to prepend
    assert _token(first.content.decode()) != data["submission"]  # the fresh form has a fresh token


def test_a_refused_activity_form_keeps_its_token_and_can_be_corrected(client, owned, ae):
    client.force_login(ae)
    token = _token(client.get(page_url(owned)).content.decode())

    refused = client.post(activities_url(owned), {"occurred_on": "", "kind": "call", "submission": token}, **HTMX)
    assert _token(refused.content.decode()) == token  # not applied, so still the first submission
    corrected = {"occurred_on": days_ago(1).isoformat(), "kind": "call", "submission": token}
    client.post(activities_url(owned), corrected, **HTMX)
    client.post(activities_url(owned), corrected, **HTMX)

    assert Activity.objects.count() == 1


def test_concurrent_duplicates_of_one_form_log_one_activity(owned, ae, transactional_db):
    """Two posts of the same form racing: the second waits on the token until the first
    commits, then finds it."""
    import threading
    import uuid

    from django.db import connection

    from accounts.services import activity_log
    from revops.idempotency import AlreadySubmitted

    token = uuid.uuid4()
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        barrier.wait()
        try:
            activity_log(account=owned, person=ae, occurred_on=days_ago(1), kind="call", submission=token)
            outcomes.append("logged")
        except AlreadySubmitted:
            outcomes.append("repeat")
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["logged", "repeat"]
    assert Activity.objects.count() == 1


def test_the_contracts_panel_lists_the_divisions_contracts_its_committed_arr_includes(client, owned, division, ae):
    """Committed ARR rolls the hierarchy up; the panel used to list only the account's own."""
    Contract.objects.create(
        external_id="GLOBEX-EU-C1",
        account=division,
        pricing_model="commit",
        signed_on=days_ago(60),
        start_on=days_ago(50),
        end_on=days_ago(50) + dt.timedelta(days=364),
        committed_arr=Decimal("40000"),
        tcv=Decimal("40000"),
    )
    client.force_login(ae)

    html = client.get(page_url(owned)).content.decode()

    section = html[html.index('id="contracts-h"') : html.index('id="activities-h"')]
    assert section.index("GLOBEX-C1") < section.index("GLOBEX-EU-C1")  # its own first
    assert 'division <a href="/accounts/GLOBEX-EU/">Globex Europe</a>' in section
    assert "$40,000" in section and "the whole hierarchy" in section
    division_page = client.get(page_url(division)).content.decode()
    assert "GLOBEX-C1" not in division_page  # a division lists its own subtree only
