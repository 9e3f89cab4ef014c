"""The account page's usage panels: metrics, the usage chart, alerts (issue #4)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Contract, OwnerRole, Ownership, Segment
from revops.models import Role
from usage.models import (
    AccountMetrics,
    Alert,
    AlertKind,
    AlertSettings,
    AlertState,
    DailyRollup,
    Meter,
    ProductRelease,
    Severity,
)
from usage.signals.charts import Release, Term, commit_pace, revenue_by_meter, usage_figure

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
D = dt.date(2026, 3, 31)  # the metrics' as-of day in these tests
TODAY = timezone.localdate()


def before(n: int) -> dt.date:
    return D - dt.timedelta(days=n)


@pytest.fixture
def acme(db, ae):
    account = Account.objects.create(external_id="ACME", name="Acme", segment=Segment.ENTERPRISE)
    Ownership.objects.create(
        account=account, person=ae, role=OwnerRole.LAND_AE, start_on=TODAY - dt.timedelta(days=400)
    )
    AlertSettings.current()
    return account


@pytest.fixture
def division(acme):
    return Account.objects.create(external_id="ACME-EU", name="Acme Europe", parent=acme, segment=Segment.SMB)


@pytest.fixture
def meters(db):
    return {
        "api": Meter.objects.create(key="api-calls", name="API calls", unit="call", feature="api"),
        "tokens": Meter.objects.create(key="tokens", name="LLM tokens", unit="1K tokens", feature="llm"),
        "storage": Meter.objects.create(key="storage", name="Storage", unit="GB", feature="storage"),
    }


@pytest.fixture
def other_ae(make_user):
    return make_user(Role.AE, name="Olive Outsider", email="other@example.test")


@pytest.fixture
def leader(make_user):
    return make_user(Role.LEADER, email="leader@example.test")


def rollup(account, meter, day, revenue) -> DailyRollup:
    return DailyRollup.objects.create(
        account=account, meter=meter, day=day, quantity=Decimal(1), revenue=Decimal(revenue), event_count=1
    )


COMPONENTS = [
    {"key": "burn", "label": "Burn rate", "points": "16.4", "max": 35, "why": "burn 32.9%; full marks at 70.0%"},
    {
        "key": "trend",
        "label": "Trend",
        "points": "10.0",
        "max": 20,
        "why": "month-over-month −5.0%; 0 at −20%, full at +10%",
    },
    {
        "key": "anomalies",
        "label": "Anomalies",
        "points": "0.0",
        "max": 15,
        "why": "sudden decline for 2 days: 40.00 vs 300.00 expected",
    },
    {
        "key": "recency",
        "label": "Last usage",
        "points": "15.0",
        "max": 15,
        "why": "0 day(s) since the last billable usage; 0 after 14",
    },
    {
        "key": "pacing",
        "label": "Commit pacing",
        "points": "12.8",
        "max": 15,
        "why": "85.0% of the pro-rated commitment consumed",
    },
]


def snapshot(account, as_of, **overrides) -> AccountMetrics:
    values = {
        "run_rate": Decimal("120000"),
        "committed_arr": Decimal("365000"),
        "burn_rate": Decimal("0.3288"),
        "band": "escalate",
        "commit_pacing": Decimal("0.8500"),
        "projected_burn_at_term_end": Decimal("0.9012"),
        "consumption_rate": Decimal("0.2466"),
        "credit_balance": Decimal("5000"),
        "credits_run_out_on": dt.date(2026, 5, 2),
        "ttfbe_days": 12,
        "mom_growth": Decimal("-0.0500"),
        "expansion_velocity": Decimal("0.0123"),
        "net_new_arr": Decimal("-4500"),
        "revenue_30d": Decimal("9863.01"),
        "consumed_in_term": Decimal("90000"),
        "last_usage_on": as_of,
        "meters_active": 2,
        "workloads": 3,
        "feature_adoption": Decimal("0.6667"),
        "health_score": 54,
        "health_components": COMPONENTS,
        "trend": [],
        "next_gate": "clawback_12m",
        "next_gate_on": dt.date(2026, 12, 20),
        "computed_at": timezone.now(),
    }
    return AccountMetrics.objects.create(account=account, as_of=as_of, **{**values, **overrides})


def url(name: str, account: Account, query: str = "") -> str:
    return reverse(f"usage:panel_{name}", args=[account.external_id]) + query


# --- Metrics ------------------------------------------------------------------------------


def test_metrics_panel_shows_every_metric_with_its_definition_and_why_health_moved(client, acme, ae):
    snapshot(acme, D)
    snapshot(acme, before(1), run_rate=Decimal("1"))
    client.force_login(ae)

    response = client.get(url("metrics", acme), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "as of 2026-03-31" in html
    for value in (
        "$120,000",  # run rate
        "$9,863 in the last 30 days",
        "$365,000",  # committed ARR
        "32.9%",  # burn
        "Escalate (&lt; 40%)",  # band
        "85.0%",  # pacing
        "$90,000 consumed this term",
        "90.1%",  # projected at term end
        "24.7%",  # consumption rate
        "$5,000",
        "runs out 2026-05-02",
        "12 days",  # TTFBE
        "−5.0%",  # MoM
        "+1.2%",  # expansion velocity
        "−$4,500",  # net-new ARR
        "3 workloads seen",
        "66.7%",  # feature adoption
    ):
        assert value in html, value
    # Definitions on hover and for screen readers; each label links to its reference entry.
    assert (
        '<a class="metric-label" href="/docs/metrics/#burn_rate" '
        'title="Run rate ÷ committed ARR in force. Bands: ≥ 70% expand, 40–70% adopt, &lt; 40% escalate.">Burn rate</a>'
    ) in html
    assert html.count('<a class="metric-label" href="/docs/metrics/#') == 14 + 5  # 13 metrics + health, its 5 parts
    # Health: the score, each component's points of its maximum and why.
    assert '<span class="health-number">54</span>' in html
    assert '<span class="mono">16.4/35</span>' in html
    assert "sudden decline for 2 days: 40.00 vs 300.00 expected" in html
    assert "<strong>12-month clawback</strong> on 2026-12-20" in html


def test_metrics_panel_says_how_much_each_component_moved_in_a_week(client, acme, ae):
    # A week earlier the score was 60 with burn at 22.4/35: burn fell 6.0 points, nothing else moved.
    earlier = [dict(part) for part in COMPONENTS]
    earlier[0]["points"] = str(Decimal(earlier[0]["points"]) + 6)
    snapshot(acme, D)
    snapshot(acme, D - dt.timedelta(days=7), health_score=60, health_components=earlier)
    client.force_login(ae)

    html = client.get(url("metrics", acme), **HTMX).content.decode()

    assert "Down 6 from 60 on 2026-03-24" in html
    assert '<span class="delta down">-6.0</span> 16.4/35' in html
    assert html.count('class="delta ') == 1


def test_metrics_panel_as_of_a_day_with_a_snapshot(client, acme, ae):
    snapshot(acme, D)
    snapshot(acme, before(1), run_rate=Decimal("77777"))
    client.force_login(ae)

    html = client.get(url("metrics", acme, f"?as_of={before(1).isoformat()}"), **HTMX).content.decode()
    assert "$77,777" in html and "as of 2026-03-30" in html

    # A day without a snapshot (or nonsense) falls back to the newest day.
    for query in ("?as_of=2020-01-01", "?as_of=yesterday"):
        html = client.get(url("metrics", acme, query), **HTMX).content.decode()
        assert "$120,000" in html and "as of 2026-03-31" in html


def test_metrics_panel_says_no_metrics_yet(client, acme, ae):
    snapshot(Account.objects.create(external_id="OTHER", name="Other", segment=Segment.SMB), D)
    client.force_login(ae)

    html = client.get(url("metrics", acme), **HTMX).content.decode()

    assert "No metrics yet." in html


def test_metrics_panel_without_htmx_is_a_page(client, acme, ae):
    snapshot(acme, D)
    client.force_login(ae)

    html = client.get(url("metrics", acme)).content.decode()

    assert "<html" in html and 'href="/accounts/ACME/"' in html and "$120,000" in html


# --- Usage chart --------------------------------------------------------------------------


@pytest.fixture
def usage(acme, division, meters):
    """Rollups on both accounts, two contracts, releases in and out of scope, a decline alert."""
    rollup(acme, meters["api"], D, "100")
    rollup(acme, meters["api"], before(1), "50")
    rollup(division, meters["tokens"], D, "30")
    rollup(division, meters["tokens"], before(1), "20")
    rollup(acme, meters["api"], before(180), "999")  # a day before the 180-day window
    first = Contract.objects.create(
        external_id="ACME-C0",
        account=acme,
        pricing_model="commit",
        signed_on=before(400),
        start_on=before(400),
        end_on=before(101),
        committed_arr=Decimal("182500"),
    )
    Contract.objects.create(
        external_id="ACME-C1",
        account=acme,
        pricing_model="commit",
        signed_on=before(100),
        start_on=before(100),
        end_on=before(-265),
        committed_arr=Decimal("365000"),
        amends=first,
    )
    in_window = ProductRelease.objects.create(released_on=before(10), name="Batch API")
    in_window.meters.add(meters["api"])
    ProductRelease.objects.create(released_on=before(20), name="Token cache", features=["llm"])
    unrelated = ProductRelease.objects.create(released_on=before(5), name="Cold storage")
    unrelated.meters.add(meters["storage"])
    too_old = ProductRelease.objects.create(released_on=before(200), name="Old API")
    too_old.meters.add(meters["api"])
    snapshot(acme, D)
    Alert.objects.create(
        account=acme,
        kind=AlertKind.SUDDEN_DECLINE,
        severity=Severity.HIGH,
        revenue_at_risk=Decimal("94900"),
        opened_on=D,
        last_seen_on=D,
        details={"days": 2, "expected": "300.00", "actual": "40.00", "drop": "0.40"},
    )
    return acme


def embedded_figure(html: str) -> dict:
    """The figure as the browser gets it: the json_script beside the chart element."""
    match = re.search(r'<script id="(usage-figure-\d+)" type="application/json">(.*?)</script>', html, re.S)
    assert match and f'data-chart="{match.group(1)}"' in html
    return json.loads(match.group(2))


def test_usage_chart_stacks_meters_with_pace_releases_and_declines(client, usage, ae):
    client.force_login(ae)

    response = client.get(url("usage_chart", usage), **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<script id="usage-figure-' in html and 'data-chart="usage-figure-' in html
    figure = embedded_figure(html)
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["API calls", "LLM tokens", "Commit pace (committed ARR ÷ 365)", "Sudden decline"]
    api, tokens, pace, decline = figure["data"]
    assert len(api["x"]) == 180 and api["x"][0] == before(179).isoformat() and api["x"][-1] == "2026-03-31"
    # Division usage rolls up; the day before the window is left out.
    assert api["y"][-2:] == [50.0, 100.0] and sum(api["y"]) == 150.0
    assert tokens["y"][-2:] == [20.0, 30.0] and sum(tokens["y"]) == 50.0
    # 182,500 / 365 = 500 a day until the amendment, then 365,000 / 365 = 1,000.
    assert pace["y"][0] == 500.0 and pace["y"][-1] == 1000.0
    assert pace["x"][pace["y"].index(1000.0)] == before(100).isoformat()
    # The alert's 2-day run ending on its last evaluation, marked on the total.
    assert decline["x"] == ["2026-03-30", "2026-03-31"] and decline["y"] == [70.0, 130.0]
    # Only releases touching these meters (by meter or feature) inside the window.
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["Token cache", "Batch API"]
    assert "Sudden decline</span> on 2 days" in html


def test_usage_chart_as_of_moves_the_window(client, usage, ae):
    client.force_login(ae)

    figure = embedded_figure(client.get(url("usage_chart", usage, "?as_of=2026-03-30"), **HTMX).content.decode())

    assert figure["data"][0]["x"][-1] == "2026-03-30"
    assert figure["data"][0]["y"][-1] == 50.0


def test_usage_chart_without_usage_says_so(client, acme, ae):
    client.force_login(ae)

    response = client.get(url("usage_chart", acme), **HTMX)

    assert "<strong>No usage</strong>" in response.content.decode()
    assert "data-chart" not in response.content.decode()


def test_usage_chart_without_htmx_is_a_page_that_loads_plotly(client, usage, ae):
    client.force_login(ae)

    html = client.get(url("usage_chart", usage)).content.decode()

    assert "<html" in html and "plotly-finance-3.7.0.min.js" in html and "js/charts.js" in html


# --- Alerts -------------------------------------------------------------------------------


def alert(account, kind, state, *, severity=Severity.MEDIUM, risk="0", opened=D, owner=None, **extra) -> Alert:
    active = state in (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED)
    return Alert.objects.create(
        account=account,
        kind=kind,
        state=state,
        severity=severity,
        revenue_at_risk=Decimal(risk),
        opened_on=opened,
        last_seen_on=opened,
        owner=owner,
        condition_active=active,
        **extra,
    )


def test_alerts_panel_lists_active_first_then_the_last_ten_closed(client, acme, ae, make_user):
    csm = make_user(Role.CSM, name="Casey Success")
    alert(acme, AlertKind.PLATEAU, AlertState.ACKNOWLEDGED, risk="1000", owner=csm)
    alert(
        acme,
        AlertKind.BELOW_FLOOR,
        AlertState.OPEN,
        severity=Severity.CRITICAL,
        risk="50000",
        owner=csm,
        gate="clawback_12m",
        gate_on=dt.date(2026, 12, 20),
    )
    for n in range(12):
        alert(acme, AlertKind.INCLUDED_70, AlertState.CLEARED, opened=before(n), cleared_on=before(n))
    client.force_login(ae)

    response = client.get(url("alerts", acme))  # the page: its context lists the rows
    assert [a.kind for a in response.context["active"]] == ["below_floor", "plateau"]
    assert len(response.context["closed"]) == 10

    html = client.get(url("alerts", acme), **HTMX).content.decode()
    assert html.index("Burn below the payout floor") < html.index("Plateau") < html.index("Recently closed")
    # One account: the largest of its risk alerts (50,000), not their sum.
    assert "<strong>2</strong> active · <strong>$50,000</strong> revenue at risk" in html
    assert "12-month clawback" in html and "2026-12-20" in html and "Casey Success" in html
    assert html.count('class="alert-closed"') == 10
    assert f'href="{reverse("usage:alerts")}"' in html


def test_alerts_panel_without_alerts(client, acme, ae):
    client.force_login(ae)

    assert "No alerts on this account." in client.get(url("alerts", acme), **HTMX).content.decode()


# --- Access and query counts -------------------------------------------------------------


@pytest.mark.parametrize("name", ["metrics", "usage_chart", "alerts"])
@pytest.mark.parametrize("htmx", [True, False])
def test_an_ae_who_does_not_own_the_account_gets_404(client, usage, other_ae, name, htmx):
    client.force_login(other_ae)

    assert client.get(url(name, usage), **(HTMX if htmx else {})).status_code == 404


@pytest.mark.parametrize("name", ["metrics", "usage_chart", "alerts"])
def test_a_leader_sees_every_panel(client, usage, leader, name):
    client.force_login(leader)

    assert client.get(url(name, usage), **HTMX).status_code == 200


def _count(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path, **HTMX).status_code == 200
    return len(queries)


@pytest.mark.parametrize(("name", "most"), [("metrics", 10), ("usage_chart", 14), ("alerts", 8)])
def test_panel_queries_do_not_grow_with_alerts_meters_releases_or_contracts(
    client, usage, ae, meters, name, most, django_assert_max_num_queries
):
    client.force_login(ae)
    path = url(name, usage)
    _count(client, path)
    small = _count(client, path)

    for n in range(5):
        meter = Meter.objects.create(key=f"m{n}", name=f"Meter {n}", unit="x", feature=f"f{n}")
        rollup(usage, meter, before(n), "10")
        ProductRelease.objects.create(released_on=before(30 + n), name=f"Release {n}").meters.add(meter)
        Contract.objects.create(
            external_id=f"ACME-X{n}",
            account=usage,
            pricing_model="commit",
            signed_on=before(9),
            start_on=before(9),
            end_on=D,
            committed_arr=Decimal(1000),
        )
        alert(usage, AlertKind.PLATEAU, AlertState.RESOLVED, opened=before(n))
        alert(
            usage,
            [
                AlertKind.CREDITS_LOW,
                AlertKind.INCLUDED_90,
                AlertKind.OVER_COMMIT,
                AlertKind.NO_FIRST_USAGE,
                AlertKind.CLAWBACK_RISK,
            ][n],
            AlertState.OPEN,
        )

    assert _count(client, path) == small
    with django_assert_max_num_queries(most):
        client.get(path, **HTMX)


# --- The figure as a pure function --------------------------------------------------------


def test_usage_figure_is_exact():
    days = [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
    by_meter = {
        "API calls": [Decimal("1"), Decimal("2.25"), Decimal("0")],
        "Tokens": [Decimal(0), Decimal(1), Decimal(1)],
    }
    # 3,650 committed ARR from Jan 2: 10 a day; nothing on Jan 1.
    pace = commit_pace([Term(dt.date(2026, 1, 2), dt.date(2026, 12, 31), Decimal(3650))], days)
    assert pace == [Decimal(0), Decimal(10), Decimal(10)]

    figure = usage_figure(
        days=days,
        by_meter=by_meter,
        pace=pace,
        releases=[Release(dt.date(2026, 1, 2), "Batch API"), Release(dt.date(2025, 12, 1), "Too early")],
        anomaly_days=[dt.date(2026, 1, 3), dt.date(2026, 2, 1)],
    )

    x = ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert figure["data"] == [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "API calls",
            "x": x,
            "y": [1.0, 2.25, 0.0],
            "stackgroup": "revenue",
            "line": {"width": 0.5, "color": "#3454d1"},
            "hovertemplate": "%{y:$,.2f}<extra>API calls</extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Tokens",
            "x": x,
            "y": [0.0, 1.0, 1.0],
            "stackgroup": "revenue",
            "line": {"width": 0.5, "color": "#12b76a"},
            "hovertemplate": "%{y:$,.2f}<extra>Tokens</extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Commit pace (committed ARR ÷ 365)",
            "x": x,
            "y": [0.0, 10.0, 10.0],
            "line": {"shape": "hv", "dash": "dash", "width": 2, "color": "#1d2330"},
            "hovertemplate": "%{y:$,.2f} a day<extra>commit pace</extra>",
        },
        {
            # Jan 3's total is 0 + 1; Feb 1 is outside the chart and dropped.
            "type": "scatter",
            "mode": "markers",
            "name": "Sudden decline",
            "x": ["2026-01-03"],
            "y": [1.0],
            "marker": {"color": "#b42318", "size": 9, "symbol": "x"},
            "hovertemplate": "%{y:$,.2f}: well below the expected level<extra>sudden decline</extra>",
        },
    ]
    layout = figure["layout"]
    assert layout["shapes"] == [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": "2026-01-02",
            "x1": "2026-01-02",
            "y0": 0,
            "y1": 1,
            "line": {"color": "#98a2b3", "width": 1, "dash": "dot"},
        }
    ]
    assert [(a["x"], a["text"]) for a in layout["annotations"]] == [("2026-01-02", "Batch API")]


def test_usage_figure_leaves_out_pace_and_markers_when_there_are_none():
    days = [dt.date(2026, 1, 1)]

    figure = usage_figure(days=days, by_meter={"API calls": [Decimal(5)]}, pace=[Decimal(0)])

    assert [t["name"] for t in figure["data"]] == ["API calls"]
    assert figure["layout"]["shapes"] == [] and figure["layout"]["annotations"] == []


def test_revenue_by_meter_fills_missing_days_with_zero():
    days = [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
    rows = [
        (dt.date(2026, 1, 2), "API calls", Decimal("3")),
        (dt.date(2025, 12, 31), "API calls", Decimal("99")),  # outside: ignored
        (dt.date(2026, 1, 1), "Tokens", Decimal("1.5")),
    ]

    assert revenue_by_meter(rows, days) == {
        "API calls": [Decimal(0), Decimal(3)],
        "Tokens": [Decimal("1.5"), Decimal(0)],
    }
