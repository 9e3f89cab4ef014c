"""Home pages that say what to do today: each role's panels, with the money at stake, each
item a link; revenue at risk counted once per account; expansion opportunities apart."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from accounts.models import Contract, OwnerRole, PricingModel
from revops.clock import today_utc
from revops.home import panels_for
from revops.models import Role
from tests.usage.test_metric_pages import AS_OF, HTMX, account, alert, client_for, own, snapshot, text
from usage.models import AlertKind, AlertState, ImportJob, ImportKind, MetricsRefresh, QuarantinedEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):
    now = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    MetricsRefresh.objects.create(
        as_of=AS_OF, alerts_evaluated=True, accounts=4, started_at=now, finished_at=now, seconds=1
    )
    csm = make_user(Role.CSM, name="Casey Success", email="casey@example.test")
    ae = make_user(Role.AE, name="Avery Exec", email="avery@example.test")
    acme, globex, initech, umbrella = (account(x) for x in ("acme", "globex", "initech", "umbrella"))
    for a in (acme, globex, initech, umbrella):
        own(a, csm, OwnerRole.CSM)
        own(a, ae, OwnerRole.LAND_AE)
    # Acme: 20% burn with the 90-day checkpoint in 30 days; Globex 118% burn (an opportunity).
    snapshot(acme, "20000", "100000", next_gate="checkpoint_90", next_gate_on=AS_OF + dt.timedelta(days=30))
    snapshot(globex, "236000", "200000")
    snapshot(initech, "50000", "100000")
    snapshot(umbrella, "10000", "0", credits_run_out_on=AS_OF + dt.timedelta(days=40))
    Contract.objects.create(
        external_id="C-U",
        account=umbrella,
        pricing_model=PricingModel.CREDITS,
        signed_on=dt.date(2026, 1, 1),
        start_on=dt.date(2026, 1, 1),
        end_on=dt.date(2026, 12, 31),
        credits=Decimal(20000),
    )
    # Two risk alerts on Acme (overlapping shortfalls) and one on Initech; credits and over-commit put nothing at risk.
    alert(acme, csm, kind=AlertKind.BELOW_FLOOR, severity=4, risk="80000")
    alert(acme, csm, kind=AlertKind.CLAWBACK_RISK, severity=3, risk="60000")
    alert(initech, csm, kind=AlertKind.PLATEAU, severity=2, risk="20000")
    alert(globex, csm, kind=AlertKind.OVER_COMMIT, severity=1, risk="0")
    alert(umbrella, csm, kind=AlertKind.CREDITS_LOW, severity=2, risk="0")
    return {"csm": csm, "ae": ae, "acme": acme, "globex": globex, "umbrella": umbrella}


def test_every_role_has_panels_and_the_home_page_loads_them(make_user, with_totp):
    for role in Role.values:
        person = make_user(role)
        if role in (Role.FINANCE, Role.ADMIN):
            with_totp(person)
        page = text(client_for(person).get("/"))
        panels = panels_for(role)
        assert panels, role
        for panel in panels:
            assert f'id="home-{panel.key}"' in page and 'hx-trigger="load"' in page


def test_the_csm_triage_panel_counts_revenue_at_risk_once_per_account(world):
    html = text(client_for(world["csm"]).get("/home/triage/", **HTMX))

    # Acme's largest (80,000) + Initech's 20,000; credits and over-commit add nothing.
    assert "<strong>5</strong> active · <strong>$100,000</strong>" in html
    assert "Critical (1)" in html and "New this week (5)" in html
    assert '/accounts/acme/#alerts">Acme</a> · Burn below the payout floor · <strong>$80,000</strong> at risk' in html


def test_the_gates_panel_lists_accounts_under_the_floor_before_a_gate_with_the_arr_short(world):
    html = text(client_for(world["ae"]).get("/home/gates/", **HTMX))

    # 25% of 100,000 = 25,000 needed; the run rate is 20,000: 5,000 a year short.
    assert "<strong>1</strong> account burning under the 25% payout floor" in html
    assert '/accounts/acme/">Acme</a> · burn 20.0% · <strong>$5,000</strong> a year to the floor' in html
    assert "90-day checkpoint in 30 days" in html


def test_opportunities_list_over_commit_and_early_credit_run_out_with_renewal_and_team(world):
    page = text(client_for(world["ae"]).get("/opportunities/"))
    panel = text(client_for(world["csm"]).get("/home/opportunities/", **HTMX))

    assert page.index("Globex") < page.index("Umbrella")  # most over commitment first
    assert "$36,000" in page  # 236,000 − 200,000 a year over commitment
    assert "Dec 31, 2026" in page and "Avery Exec" in page and "Casey Success" in page
    assert "Acme" not in page and "Initech" not in page
    assert "<strong>2</strong> accounts at or over commitment" in panel and "<strong>$36,000</strong> a year" in panel


def test_the_team_panel_gives_company_figures_and_movers(world, make_user):
    leader = make_user(Role.LEADER)
    html = text(client_for(leader).get("/home/team/", **HTMX))

    assert "$316,000" in html  # 20,000 + 236,000 + 50,000 + 10,000 run rate a year
    assert "$100,000" in html  # revenue at risk, once per account


def test_the_data_panel_shows_failed_imports_and_the_quarantine(make_user, with_totp):
    finance = make_user(Role.FINANCE, name="Finn Ance")
    with_totp(finance)
    ImportJob.objects.create(
        kind=ImportKind.ACCOUNTS,
        file_name="accounts.csv",
        path="/nonexistent",
        sha256="x",
        size_bytes=1,
        status=ImportJob.Status.FAILED,
        error_count=3,
        created_by=finance,
    )
    QuarantinedEvent.objects.create(
        source="s",
        event_id="e",
        account_ref="ghost",
        meter_ref="m",
        occurred_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        quantity=1,
        reason="unknown account",
        received_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    )

    html = text(client_for(finance).get("/home/data/", **HTMX))

    assert "<strong>1</strong> failed import in the last 30 days" in html and "3 problems" in html
    assert "<strong>1</strong> event in quarantine" in html and "1 · unknown account" in html


def test_a_panel_is_refused_to_roles_it_is_not_for(world):
    assert client_for(world["ae"]).get("/home/triage/", **HTMX).status_code == 403
    assert client_for(world["csm"]).get("/home/data/", **HTMX).status_code == 403


def test_a_snoozed_alert_ending_this_week_is_listed(world):
    from usage.models import Alert

    Alert.objects.filter(kind=AlertKind.PLATEAU).update(state=AlertState.SNOOZED, snoozed_until=today_utc())

    html = text(client_for(world["csm"]).get("/home/triage/", **HTMX))

    assert "Snoozes ending this week" in html and "Initech" in html


def test_movers_compare_with_the_newest_snapshot_at_least_30_days_back(world, make_user):
    from usage.models import AccountMetrics

    month_end = AS_OF - dt.timedelta(days=35)
    for acct, run in ((world["acme"], "30000"), (world["globex"], "200000")):
        row = AccountMetrics.objects.get(account=acct, as_of=AS_OF)
        row.pk, row.as_of, row.run_rate = None, month_end, Decimal(run)
        row.save()

    html = text(client_for(make_user(Role.LEADER)).get("/home/team/", **HTMX))

    since = month_end.strftime("%b %-d")
    assert f"Biggest movers up since {since}" in html
    assert 'Globex</a> <strong class="up">+$36,000</strong>' in html  # 200,000 → 236,000 a year
    assert 'Acme</a> <strong class="down">−$10,000</strong>' in html  # 30,000 → 20,000


def test_the_meters_panel_compares_30_days_with_the_30_before_and_follows_new_rollups(world, make_user):
    from django.core.cache import cache

    from tests.usage.test_panels import rollup
    from usage.models import Meter

    api = Meter.objects.create(key="api-calls", name="API calls", unit="call", feature="api")
    tokens = Meter.objects.create(key="tokens", name="LLM tokens", unit="1K tokens", feature="llm")
    acme, globex = world["acme"], world["globex"]
    rollup(acme, api, AS_OF, "300")  # the 30 days to AS_OF …
    rollup(globex, api, AS_OF - dt.timedelta(days=29), "100")
    rollup(acme, api, AS_OF - dt.timedelta(days=30), "200")  # … and the 30 before
    rollup(acme, api, AS_OF - dt.timedelta(days=60), "999")  # older: in neither
    rollup(acme, tokens, AS_OF - dt.timedelta(days=45), "50")  # used before, not lately
    cache.clear()
    leader = client_for(make_user(Role.LEADER))

    def rows() -> str:
        return " ".join(re.sub(r"<[^>]+>", " ", text(leader.get("/home/meters/", **HTMX))).split())

    html = rows()
    assert "API calls api $400 +100.0% 2" in html
    assert "LLM tokens llm $0 -100.0% 0" in html
    # Kept until a rollup of those months changes: a new day shows at once.
    rollup(globex, tokens, AS_OF, "25")
    html = rows()
    assert "LLM tokens llm $25 -50.0% 1" in html
