"""The triage queue, the AE book and company metrics: pages, fragments, actions, access."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import Account, OwnerRole, Ownership, Segment
from revops.models import Role, Team
from usage.models import AccountMetrics, Alert, AlertEvent, AlertKind, AlertSettings, AlertState, PortfolioMetrics

AS_OF = dt.date(2026, 11, 20)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def cs(make_user):
    """Two CS teams: A (Casey, Cam; managed by Lee) and B (Bo)."""
    lee = make_user(Role.LEADER, name="Lee Leader", email="lee@example.test")
    team_a = Team.objects.create(name="CS A", manager=lee)
    team_b = Team.objects.create(name="CS B")
    return {
        "lee": lee,
        "casey": make_user(Role.CSM, team=team_a, name="Casey CSM", email="casey@example.test"),
        "cam": make_user(Role.CSM, team=team_a, name="Cam CSM", email="cam@example.test"),
        "bo": make_user(Role.CSM, team=team_b, name="Bo CSM", email="bo@example.test"),
    }


def account(external_id: str, *, parent=None, segment=Segment.MID_MARKET, name=None) -> Account:
    return Account.objects.create(
        external_id=external_id, name=name or external_id.title(), segment=segment, parent=parent
    )


def own(acct: Account, person, role=OwnerRole.CSM, start=dt.date(2025, 1, 1), end=None) -> None:
    Ownership.objects.create(account=acct, person=person, role=role, start_on=start, end_on=end)


def alert(acct: Account, owner, kind=AlertKind.PLATEAU, severity=2, risk="1000", state=AlertState.OPEN) -> Alert:
    return Alert.objects.create(
        account=acct,
        kind=kind,
        severity=severity,
        state=state,
        owner=owner,
        revenue_at_risk=Decimal(risk),
        opened_on=AS_OF,
        last_seen_on=AS_OF,
        condition_active=state in ("open", "acknowledged", "snoozed"),
    )


def text(response) -> str:
    return html.unescape(response.content.decode())


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Triage queue -------------------------------------------------------------------------


def test_csm_queue_lists_own_alerts_most_severe_then_most_revenue_first(cs):
    a, b, c = account("a"), account("b"), account("c")
    low = alert(a, cs["casey"], severity=1, risk="90000")
    big = alert(b, cs["casey"], kind=AlertKind.BELOW_FLOOR, severity=4, risk="5000")
    bigger = alert(c, cs["casey"], kind=AlertKind.CLAWBACK_RISK, severity=4, risk="7000")
    alert(account("other"), cs["cam"])  # a teammate's: not in "mine"

    response = client_for(cs["casey"]).get("/alerts/")

    assert response.status_code == 200
    html = text(response)
    rows = [f'id="alert-{x.pk}"' for x in (bigger, big, low)]
    positions = [html.index(row) for row in rows]
    assert positions == sorted(positions)
    assert "Other" not in html
    # Counts: 3 open, none acknowledged/snoozed, 5000 + 7000 + 90000 = $102.0K at risk.
    assert "<strong>3</strong> open" in html
    assert "$102.0K" in html


def test_queue_fragment_is_only_the_queue(cs):
    alert(account("a"), cs["casey"])
    response = client_for(cs["casey"]).get("/alerts/?kind=plateau", **HTMX)
    html = text(response)
    assert html.lstrip().startswith('<div id="alert-queue">')
    assert "<html" not in html


def test_acknowledge_returns_the_row_and_counts_out_of_band(cs):
    first = alert(account("a"), cs["casey"])
    alert(account("b"), cs["casey"])

    response = client_for(cs["casey"]).post(f"/alerts/{first.pk}/act/", {"action": "acknowledge"}, **HTMX)

    html = text(response)
    first.refresh_from_db()
    assert first.state == AlertState.ACKNOWLEDGED
    assert html.lstrip().startswith(f'<tr id="alert-{first.pk}"')
    assert 'id="alert-counts" class="counts" hx-swap-oob="true"' in html
    assert "<strong>1</strong> open" in html
    assert "<strong>1</strong> acknowledged" in html
    event = AlertEvent.objects.get(alert=first, action="acknowledge")
    assert (event.actor, event.from_state, event.to_state) == (cs["casey"], "open", "acknowledged")


def test_snooze_needs_a_future_date_and_says_so(cs):
    item = alert(account("a"), cs["casey"])
    client = client_for(cs["casey"])

    past = client.post(f"/alerts/{item.pk}/act/", {"action": "snooze", "until": "2020-01-01"}, **HTMX)
    missing = client.post(f"/alerts/{item.pk}/act/", {"action": "snooze"}, **HTMX)
    garbage = client.post(f"/alerts/{item.pk}/act/", {"action": "snooze", "until": "next week"}, **HTMX)

    assert "Snooze until must be after today" in text(past)
    assert past["HX-Retarget"] == "#queue-message"
    assert "Snooze needs a date to snooze until." in text(missing)
    assert "'next week' is not a date (YYYY-MM-DD)." in text(garbage)
    item.refresh_from_db()
    assert item.state == AlertState.OPEN


def test_snooze_and_resolve_record_when_and_why(cs):
    first, second = alert(account("a"), cs["casey"]), alert(account("b"), cs["casey"])
    client = client_for(cs["casey"])
    until = dt.datetime.now(tz=dt.UTC).date() + dt.timedelta(days=7)

    client.post(f"/alerts/{first.pk}/act/", {"action": "snooze", "until": until.isoformat()}, **HTMX)
    no_outcome = client.post(f"/alerts/{second.pk}/act/", {"action": "resolve", "note": "  "}, **HTMX)
    client.post(f"/alerts/{second.pk}/act/", {"action": "resolve", "note": "Champion back from leave"}, **HTMX)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.snoozed_until) == (AlertState.SNOOZED, until)
    assert "Resolving needs an outcome note" in text(no_outcome)
    assert (second.state, second.outcome) == (AlertState.RESOLVED, "Champion back from leave")


def test_csm_cannot_act_on_another_teams_alert(cs):
    theirs = alert(account("a"), cs["bo"])
    own(theirs.account, cs["casey"])  # Casey can see the account, still not her team's alert

    page = text(client_for(cs["casey"]).get("/alerts/?owner="))
    response = client_for(cs["casey"]).post(f"/alerts/{theirs.pk}/act/", {"action": "dismiss"}, **HTMX)

    assert "Another team's" in page
    assert "You cannot act on the Plateau / stalled adoption alert on A." in text(response)
    theirs.refresh_from_db()
    assert theirs.state == AlertState.OPEN


def test_teammate_and_manager_may_act_on_a_team_alert(cs):
    item = alert(account("a"), cs["casey"])
    client_for(cs["cam"]).post(f"/alerts/{item.pk}/act/", {"action": "acknowledge"}, **HTMX)
    client_for(cs["lee"]).post(f"/alerts/{item.pk}/act/", {"action": "dismiss"}, **HTMX)
    item.refresh_from_db()
    assert item.state == AlertState.DISMISSED


def test_alert_outside_scope_is_404_for_every_url(cs):
    hidden = alert(account("a"), cs["bo"])
    client = client_for(cs["casey"])
    assert client.get(f"/alerts/{hidden.pk}/history/").status_code == 404
    assert client.get(f"/alerts/{hidden.pk}/forms/").status_code == 404
    assert client.post(f"/alerts/{hidden.pk}/act/", {"action": "acknowledge"}).status_code == 404


def test_bulk_action_is_all_or_nothing(cs):
    mine = alert(account("a"), cs["casey"])
    theirs = alert(account("b"), cs["bo"])
    own(theirs.account, cs["casey"])
    client = client_for(cs["casey"])

    refused = client.post("/alerts/bulk/", {"action": "acknowledge", "alert": [mine.pk, theirs.pk]}, **HTMX)
    mine.refresh_from_db()
    assert "You cannot act on" in text(refused)
    assert mine.state == AlertState.OPEN

    second = alert(account("c"), cs["casey"])
    done = client.post("/alerts/bulk/", {"action": "acknowledge", "alert": [mine.pk, second.pk], "owner": "me"}, **HTMX)
    assert "acknowledge: 2 alerts." in text(done)
    assert set(Alert.objects.filter(owner=cs["casey"]).values_list("state", flat=True)) == {"acknowledged"}


def test_action_without_javascript_redirects_back_with_a_message(cs):
    item = alert(account("a"), cs["casey"])
    response = client_for(cs["casey"]).post(f"/alerts/{item.pk}/act/", {"action": "acknowledge", "owner": "me"})
    assert response.status_code == 302
    assert response["Location"].startswith("/alerts/?")


def test_history_lists_every_step(cs):
    item = alert(account("a"), cs["casey"])
    AlertEvent.objects.create(alert=item, action="opened", to_state="open")
    client = client_for(cs["casey"])
    client.post(f"/alerts/{item.pk}/act/", {"action": "assign", "assignee": cs["cam"].pk}, **HTMX)
    html = text(client.get(f"/alerts/{item.pk}/history/", **HTMX))
    assert "nightly job" in html
    assert "assigned to Cam CSM" in html


def test_leader_sees_the_team_queue_by_default(cs):
    alert(account("a"), cs["casey"])
    alert(account("b"), cs["cam"])
    html = text(client_for(cs["lee"]).get("/alerts/"))
    assert "<strong>2</strong> open" in html


def test_queue_query_count_does_not_grow_with_alerts(cs, django_assert_max_num_queries):
    client = client_for(cs["lee"])

    def load() -> None:
        client.get("/alerts/?owner=")

    for k in range(3):
        alert(account(f"a{k}"), cs["casey"])
    with django_assert_max_num_queries(12):
        load()
    for k in range(40):
        alert(account(f"b{k}"), cs["cam"] if k % 2 else cs["casey"])
    with django_assert_max_num_queries(12):
        load()


# --- AE book --------------------------------------------------------------------------------


def snapshot(acct: Account, run_rate: str, committed: str, health: int = 50, **extra) -> AccountMetrics:
    run, commit = Decimal(run_rate), Decimal(committed)
    burn = (run / commit).quantize(Decimal("0.0001")) if commit else None
    band = (
        "none"
        if burn is None
        else "expand"
        if burn >= Decimal("0.7")
        else "adopt"
        if burn >= Decimal("0.4")
        else "escalate"
    )
    return AccountMetrics.objects.create(
        account=acct,
        as_of=AS_OF,
        run_rate=run,
        committed_arr=commit,
        burn_rate=burn,
        band=band,
        net_new_arr=0,
        revenue_30d=0,
        consumed_in_term=0,
        meters_active=1,
        workloads=0,
        feature_adoption=0,
        health_score=health,
        trend=["1", "2", "3"],
        computed_at=dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
        **extra,
    )


@pytest.fixture
def book(ae, make_user):
    """Avery owns Parent (with its Division) and Solo; Other belongs to another AE."""
    from usage.models import MetricsRefresh

    other_ae = make_user(Role.AE, name="Olly Other", email="olly@example.test")
    parent = account("parent", segment=Segment.ENTERPRISE)
    division = account("division", parent=parent)
    solo = account("solo", name='=HYPERLINK("http://evil")')
    other = account("other")
    own(parent, ae, OwnerRole.LAND_AE)
    own(solo, ae, OwnerRole.EXPAND_AE)
    own(other, other_ae, OwnerRole.LAND_AE)
    snapshot(parent, "300000", "400000", health=80)
    snapshot(division, "100000", "0")
    snapshot(solo, "50000", "200000", health=20)
    snapshot(other, "999999", "1000000")
    MetricsRefresh.objects.create(
        as_of=AS_OF,
        started_at=dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
        accounts=4,
        seconds=1,
    )
    return {"ae": ae, "other_ae": other_ae, "parent": parent, "division": division, "solo": solo, "other": other}


def test_ae_book_shows_own_accounts_with_totals_that_count_divisions_once(book):
    html = text(client_for(book["ae"]).get("/book/"))
    assert "Parent" in html and "Division" in html
    assert "Other" not in html
    # Totals: parent 300,000 (its division is inside it) + solo 50,000 = 350,000 run rate;
    # committed 400,000 + 200,000 = 600,000; burn 350/600 = 58.3%.
    assert "$350,000" in html
    assert "$600,000" in html
    assert "58.3%" in html
    assert "3 accounts" in html


def test_ae_cannot_open_another_persons_book(book):
    response = client_for(book["ae"]).get(f"/book/?person={book['other_ae'].pk}")
    assert response.status_code == 403
    assert client_for(book["ae"]).get(f"/book.csv?person={book['other_ae'].pk}").status_code == 403


def test_book_sorts_filters_and_serves_a_fragment(book):
    client = client_for(book["ae"])
    html = text(client.get("/book/?sort=health", **HTMX))
    # The fragment: the table, plus the title and roll-ups out of band (they follow "Whose").
    assert '<div id="book-table">' in html and '<h1 id="book-title" hx-swap-oob="true">My book</h1>' in html
    assert html.index("HYPERLINK") < html.index("Parent")  # health 20 before 80
    filtered = text(client.get("/book/?band=escalate", **HTMX))
    assert "HYPERLINK" in filtered and "Parent" not in filtered


def test_leader_reads_any_book_in_scope(book, make_user):
    leader = make_user(Role.LEADER)
    html = text(client_for(leader).get(f"/book/?person={book['other_ae'].pk}"))
    assert "Other" in html and "Parent" not in html


def test_a_leaders_book_defaults_to_every_account_with_a_roll_up_per_rep(book, make_user):
    """It used to default to the leader's own (empty) book."""
    leader = make_user(Role.LEADER)
    response = client_for(leader).get("/book/")
    html = text(response)

    assert '<h1 id="book-title">Every account</h1>' in html
    assert "Parent" in html and "Other" in html
    rollups = {r.person.name: r for r in response.context["rollups"]}
    # Avery: Parent 300,000 (its division inside) + Solo 50,000.
    assert rollups["Avery Exec"].run_rate == Decimal("350000.00") and rollups["Avery Exec"].accounts == 3
    assert rollups["Olly Other"].accounts == 1


def test_a_managers_book_defaults_to_their_teams(book, make_user):
    from revops.models import Team

    manager = make_user(Role.AE, name="Mona Manager")
    team = Team.objects.create(name="West", manager=manager)
    book["ae"].team = team
    book["ae"].save(update_fields=["team"])

    response = client_for(manager).get("/book/")

    assert "My teams' books" in text(response)
    assert {r.person.name for r in response.context["rollups"]} == {"Avery Exec", "Mona Manager"}
    assert "Parent" in text(response) and "Other" not in text(response)


def test_book_csv_neutralizes_spreadsheet_formulas(book):
    response = client_for(book["ae"]).get("/book.csv?sort=name")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["account", "external_id", "segment"]
    names = [row[0] for row in rows[1:]]
    assert '\'=HYPERLINK("http://evil")' in names
    assert "Other" not in names
    assert response["Content-Disposition"].startswith('attachment; filename="book-ae-2026-11-20.csv"')


def test_book_query_count_does_not_grow_with_accounts(book, django_assert_max_num_queries):
    client = client_for(book["ae"])
    with django_assert_max_num_queries(12):
        client.get("/book/")
    for k in range(30):
        extra = account(f"extra{k}")
        own(extra, book["ae"], OwnerRole.LAND_AE)
        snapshot(extra, "1000", "2000")
        alert(extra, None)
    with django_assert_max_num_queries(12):
        client.get("/book/")


# --- Company metrics & settings -------------------------------------------------------------


def test_company_metrics_for_leaders_not_for_aes(ae, make_user):
    for segment in ("", "smb"):
        PortfolioMetrics.objects.create(
            as_of=AS_OF,
            segment=segment,
            accounts=3,
            run_rate=Decimal("1200000"),
            committed_arr=Decimal("1500000"),
            burn_rate=Decimal("0.8"),
            nrr=Decimal("1.1250"),
            gur=Decimal("0.9500"),
            net_new_arr=0,
            realization_committed=Decimal("100"),
            realization_realized=Decimal("70"),
        )
    assert client_for(ae).get("/metrics/").status_code == 403
    html = text(client_for(make_user(Role.LEADER)).get("/metrics/"))
    assert "112.5%" in html  # NRR
    assert "$30" in html  # realization gap 100 − 70
    assert 'id="run_vs_commit"' in html  # the figure's JSON for charts.js


def test_alert_settings_are_for_admins_and_validated(make_user, ae, with_totp):
    admin = make_user(Role.ADMIN)
    with_totp(admin)
    client = client_for(admin)
    assert client_for(ae).get("/system/alert-settings/").status_code == 403
    data = {
        name: getattr(AlertSettings.current(), name)
        for name in (
            "expand_band",
            "escalate_band",
            "payout_floor",
            "clawback_floor",
            "run_rate_days",
            "decline_drop",
            "decline_mad_multiple",
            "decline_days",
            "decline_min_daily_revenue",
            "plateau_days",
            "plateau_tolerance",
            "no_usage_days",
            "included_warn",
            "included_critical",
            "credits_low_fraction",
        )
    }
    bad = client.post("/system/alert-settings/", {**data, "escalate_band": "0.80"})
    assert "must be below the expand band" in text(bad)
    client.post("/system/alert-settings/", {**data, "payout_floor": "0.30"})
    assert AlertSettings.current().payout_floor == Decimal("0.3000")


def test_a_big_book_is_paged_and_its_totals_cover_every_page(book):
    for k in range(110):
        extra = account(f"bulk{k:03d}")
        own(extra, book["ae"], OwnerRole.LAND_AE)
        snapshot(extra, "1000", "2000")
    client = client_for(book["ae"])
    first = text(client.get("/book/?sort=name"))
    second = text(client.get("/book/?sort=name&page=2", **HTMX))
    # 3 + 110 = 113 accounts; run rate 300,000 + 50,000 + 110 × 1,000 = 460,000.
    assert "Accounts 1–100 of 113" in first
    assert "Accounts 101–113 of 113" in second
    assert "$460,000" in first and "$460,000" in second


def test_the_book_links_to_its_next_page_and_sorts_keeping_the_filters(book):
    for k in range(110):
        extra = account(f"bulk{k:03d}")
        own(extra, book["ae"], OwnerRole.LAND_AE)
        snapshot(extra, "1000", "2000")
    html = client_for(book["ae"]).get("/book/?sort=name&q=bulk").content.decode()

    assert "??" not in html
    assert 'href="?sort=name&amp;q=bulk&amp;page=2"' in html
    assert 'href="?sort=-run_rate&amp;q=bulk"' in html


def test_an_alerts_inputs_are_labelled_and_formatted_not_field_keys(cs):
    """The queue used to show "floor 0.2500 · burnrate 0.1691 · dayssinceland 156"."""
    a = alert(account("acme"), cs["casey"], kind=AlertKind.BELOW_FLOOR, severity=4, risk="5000")
    a.details = {"burn_rate": "0.1691", "floor": "0.2500", "days_since_land": 156}
    a.save(update_fields=["details"])

    html = text(client_for(cs["casey"]).get("/alerts/"))

    assert "<dt>Burn rate</dt><dd>16.9%</dd>" in html
    assert "<dt>Floor</dt><dd>25.0%</dd>" in html and "<dt>Days since land</dt><dd>156 days</dd>" in html
    assert "burnrate" not in html and "0.1691" not in html
