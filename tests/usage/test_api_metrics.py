"""The read API: GET /api/v1/accounts/{id}/metrics, /api/v1/metrics and /api/v1/alerts.

A small hand-built book, refreshed once as of 2026-04-30 (a Thursday; 2026 is not a leap
year). Every figure below is worked out by hand from the rollups:

acme (enterprise, land AE "ae", CSM "csm"): commit contract 2026-01-01 – 2026-12-31,
$240,000 committed ARR; revenue per day 25 on Jan 11–30 (first usage 10 days after
start), 100 on Jan 31–Mar 1, 150 on Mar 2–31, 200 on Apr 1–30.
globex (mid-market, land AE "other"): no contract; 10 a day from 2025-12-01.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import CommandError, call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from schemathesis import experimental
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Account, Contract, OwnerRole, Ownership, PricingModel, Segment
from revops.api_keys import api_key_create, api_key_revoke
from revops.errors import ApplicationError
from revops.models import ApiKey, Role
from usage.models import (
    AccountMetrics,
    Alert,
    AlertKind,
    AlertState,
    DailyRollup,
    Meter,
    MeterTier,
    PortfolioMetrics,
    Severity,
)
from usage.signals.metrics import DEFINITIONS
from usage.signals.services import refresh_metrics

pytestmark = pytest.mark.django_db

D = dt.date
AS_OF = D(2026, 4, 30)
TODAY = timezone.now().date()


def spend(account: Account, meter: Meter, first: dt.date, last: dt.date, revenue: str) -> None:
    """One rollup a day from ``first`` to ``last`` inclusive, each with ``revenue``."""
    DailyRollup.objects.bulk_create(
        DailyRollup(
            account=account,
            meter=meter,
            day=first + dt.timedelta(days=k),
            quantity=Decimal(revenue),
            revenue=Decimal(revenue),
            event_count=1,
        )
        for k in range((last - first).days + 1)
    )


@pytest.fixture
def people(ae, make_user):
    return {
        "ae": ae,
        "other": make_user(Role.AE, email="other@example.test", name="Olive Other"),
        "csm": make_user(Role.CSM, email="csm@example.test", name="Casey Success"),
        "leader": make_user(Role.LEADER, email="leader@example.test", name="Lee Leader"),
        "product": make_user(Role.PRODUCT, email="pm@example.test", name="Pat Product"),
    }


@pytest.fixture
def book(people):
    acme = Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    globex = Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    start = D(2026, 1, 1)
    Ownership.objects.create(account=acme, person=people["ae"], role=OwnerRole.LAND_AE, start_on=start)
    Ownership.objects.create(account=acme, person=people["csm"], role=OwnerRole.CSM, start_on=start)
    Ownership.objects.create(account=globex, person=people["other"], role=OwnerRole.LAND_AE, start_on=D(2025, 12, 1))
    return {"acme": acme, "globex": globex}


@pytest.fixture
def usage(book):
    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call", feature="api")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="1")
    acme, globex = book["acme"], book["globex"]
    Contract.objects.create(
        external_id="acme-2026",
        account=acme,
        pricing_model=PricingModel.COMMIT,
        signed_on=D(2025, 12, 20),
        start_on=D(2026, 1, 1),
        end_on=D(2026, 12, 31),
        committed_arr=Decimal("240000"),
    )
    spend(acme, meter, D(2026, 1, 11), D(2026, 1, 30), "25")
    spend(acme, meter, D(2026, 1, 31), D(2026, 3, 1), "100")
    spend(acme, meter, D(2026, 3, 2), D(2026, 3, 31), "150")
    spend(acme, meter, D(2026, 4, 1), D(2026, 4, 30), "200")
    spend(globex, meter, D(2025, 12, 1), D(2026, 4, 30), "10")
    return book


@pytest.fixture
def snapshot(usage):
    refresh_metrics(as_of=AS_OF)
    return usage


@pytest.fixture
def key_for():
    def make(person, scopes=(ApiKey.Scope.READ,)):
        return api_key_create(name="reader", scopes=list(scopes), created_by=person)

    return make


def get(path: str, *, key: str | None = None, client: Client | None = None, **params):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return (client or Client()).get(path, params, headers=headers)


# acme as of 2026-04-30, by hand:
#   trailing 30 days (Apr 1–30) = 6,000; the 30 before (Mar 2–31) = 4,500
#   run rate = 6,000 × 365 / 30 = 73,000.00; burn = 73,000 / 240,000 = 0.30416… → 0.3042 (< 40%: escalate)
#   consumed in term = 20×25 + 30×100 + 30×150 + 30×200 = 14,000
#   pacing = 14,000 ÷ (240,000 × 120 days / 365) = 0.17743… → 0.1774
#   projected at term end = (14,000 + 73,000 × 245 / 365) ÷ 240,000 = 63,000 / 240,000 = 0.2625
#   consumption rate = 14,000 / 240,000 = 0.058333… → 0.0583
#   TTFBE = Jan 11 − Jan 1 = 10 days; MoM = 6,000 / 4,500 − 1 = 0.3333
#   expansion velocity: land 119 days ago; (6,000 / 500 [Jan 1–30]) ^ (30/90) − 1 = 12^(1/3) − 1 = 1.2894
#   net-new ARR = (13,500 [Jan 31–Apr 30] − 500 [Nov 1–Jan 30]) × 365 / 90 = 52,722.22
#   health: burn 35 × 0.3042/0.70 = 15.2; trend 20 (MoM ≥ +10%); anomalies 15; recency 15 (used today);
#   pacing 15 × 0.1774 = 2.7 → 67.9 → 68
ACME = {
    "account": "acme",
    "account_name": "Acme",
    "as_of": "2026-04-30",
    "source": "snapshot",
    "run_rate": "73000.00",
    "committed_arr": "240000.00",
    "burn_rate": "0.3042",
    "band": "escalate",
    "commit_pacing": "0.1774",
    "projected_burn_at_term_end": "0.2625",
    "consumption_rate": "0.0583",
    "credit_balance": None,
    "credits_run_out_on": None,
    "ttfbe_days": 10,
    "mom_growth": "0.3333",
    "expansion_velocity": "1.2894",
    "net_new_arr": "52722.22",
    "health_score": 68,
    "open_alerts": 0,
    "revenue_at_risk": "0.00",
}
ACME_HEALTH = [
    ("burn", "Burn rate", "15.2", 35),
    ("trend", "Trend", "20.0", 20),
    ("anomalies", "Anomalies", "15.0", 15),
    ("recency", "Last usage", "15.0", 15),
    ("pacing", "Commit pacing", "2.7", 15),
]


def without_health(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "health_components"}


def health_of(body: dict) -> list[tuple]:
    assert all(c["why"] for c in body["health_components"])
    return [(c["key"], c["label"], c["points"], c["max"]) for c in body["health_components"]]


# --- GET /api/v1/accounts/{external_id}/metrics --------------------------------------------


def test_account_metrics_come_from_the_snapshot_in_exact_string_formats(snapshot, people, key_for):
    _, raw = key_for(people["ae"])

    response = get("/api/v1/accounts/acme/metrics", key=raw, as_of="2026-04-30")

    assert response.status_code == 200
    body = response.json()
    assert without_health(body) == ACME
    assert health_of(body) == ACME_HEALTH


def test_as_of_defaults_to_the_newest_snapshot_day(snapshot, people, key_for):
    _, raw = key_for(people["ae"])

    body = get("/api/v1/accounts/acme/metrics", key=raw).json()

    assert (body["as_of"], body["source"]) == ("2026-04-30", "snapshot")


def test_nulls_and_a_zero_ratio_keep_their_formats(snapshot, people, key_for):
    # globex: no contract → no burn, band "none"; 300 vs 300 → MoM exactly 0.0000;
    # run rate 300 × 365 / 30 = 3,650.00; net-new (900 − 610 [Dec 1–Jan 30]) × 365 / 90 = 1,176.11.
    _, raw = key_for(people["leader"])

    body = get("/api/v1/accounts/globex/metrics", key=raw).json()

    assert without_health(body) == {
        "account": "globex",
        "account_name": "Globex",
        "as_of": "2026-04-30",
        "source": "snapshot",
        "run_rate": "3650.00",
        "committed_arr": "0.00",
        "burn_rate": None,
        "band": "none",
        "commit_pacing": None,
        "projected_burn_at_term_end": None,
        "consumption_rate": None,
        "credit_balance": None,
        "credits_run_out_on": None,
        "ttfbe_days": None,
        "mom_growth": "0.0000",
        "expansion_velocity": None,
        "net_new_arr": "1176.11",
        # neutral burn 25 + trend 20 × 0.2/0.3 = 13.3 + anomalies 15 + recency 15 + neutral pacing 10 = 78.3
        "health_score": 78,
        "open_alerts": 0,
        "revenue_at_risk": "0.00",
    }


def test_a_day_without_a_snapshot_is_computed_live_in_the_same_shape(snapshot, people, key_for):
    _, raw = key_for(people["ae"])
    AccountMetrics.objects.filter(as_of=AS_OF).delete()

    body = get("/api/v1/accounts/acme/metrics", key=raw, as_of="2026-04-30").json()

    assert without_health(body) == {**ACME, "source": "live"}
    assert health_of(body) == ACME_HEALTH


def test_a_past_day_is_computed_live(usage, people, key_for):
    # As of 2026-03-31: trailing 30 days (Mar 2–31) 4,500 → run rate 54,750.00, burn 0.2281.
    _, raw = key_for(people["ae"])

    body = get("/api/v1/accounts/acme/metrics", key=raw, as_of="2026-03-31").json()

    assert (body["source"], body["as_of"], body["run_rate"], body["burn_rate"]) == (
        "live",
        "2026-03-31",
        "54750.00",
        "0.2281",
    )


@pytest.mark.parametrize("value", ["yesterday", "2026-02-30", "20260430", "2026-4-30", "2026-W18-4"])
def test_a_malformed_as_of_is_a_400_that_says_so(snapshot, people, key_for, value):
    _, raw = key_for(people["ae"])

    response = get("/api/v1/accounts/acme/metrics", key=raw, as_of=value)

    assert response.status_code == 400
    assert response.json() == {"detail": f"as_of must be a date as YYYY-MM-DD, not {value!r}."}


def test_an_as_of_in_the_future_is_a_400(snapshot, people, key_for):
    _, raw = key_for(people["ae"])
    tomorrow = TODAY + dt.timedelta(days=1)

    response = get("/api/v1/accounts/acme/metrics", key=raw, as_of=tomorrow.isoformat())

    assert response.status_code == 400
    assert "in the future" in response.json()["detail"]


def test_an_ae_gets_404_for_an_account_outside_their_book_like_an_unknown_one(snapshot, people, key_for):
    _, raw = key_for(people["ae"])

    outside = get("/api/v1/accounts/globex/metrics", key=raw)
    unknown = get("/api/v1/accounts/nope/metrics", key=raw)
    live_outside = get("/api/v1/accounts/globex/metrics", key=raw, as_of="2026-03-31")

    assert outside.status_code == unknown.status_code == live_outside.status_code == 404
    assert outside.json() == unknown.json() == live_outside.json() == {"detail": "No such account."}


def test_a_nul_character_is_an_answer_not_a_server_error(snapshot, people, key_for):
    _, raw = key_for(people["leader"])

    in_path = get("/api/v1/accounts/ac%00me/metrics", key=raw)
    in_query = get("/api/v1/alerts", key=raw, account="ac\x00me")

    assert (in_path.status_code, in_query.status_code) == (400, 400)
    assert in_path.json() == {
        "detail": "The address contains a NUL character (\\x00), which no field accepts; remove it and try again."
    }
    assert in_query.json()["detail"].startswith("The parameter 'account' contains a NUL character")


def test_a_key_reads_with_its_creators_scope(snapshot, people, key_for):
    _, ae_key = key_for(people["ae"])
    _, other_key = key_for(people["other"])

    assert get("/api/v1/accounts/acme/metrics", key=ae_key).status_code == 200
    assert get("/api/v1/accounts/globex/metrics", key=ae_key).status_code == 404
    assert get("/api/v1/accounts/acme/metrics", key=other_key).status_code == 404
    assert get("/api/v1/accounts/globex/metrics", key=other_key).status_code == 200


def test_a_key_without_the_read_scope_is_a_403(snapshot, people, key_for):
    _, raw = key_for(people["leader"], scopes=[ApiKey.Scope.EVENTS_WRITE])

    response = get("/api/v1/accounts/acme/metrics", key=raw)

    assert response.status_code == 403
    assert response.json() == {"detail": "This key lacks the 'read' scope."}


def test_a_read_key_for_nobody_is_refused_when_created(snapshot):
    with pytest.raises(ApplicationError, match="must read as a person"):
        api_key_create(name="orphan", scopes=[ApiKey.Scope.READ])


def test_a_key_whose_person_was_removed_is_a_403_that_says_why(snapshot, people):
    key, raw = api_key_create(name="bi", scopes=[ApiKey.Scope.READ], acts_as=people["leader"])
    ApiKey.objects.filter(pk=key.pk).update(acts_as=None)  # as ON DELETE SET NULL leaves it

    response = get("/api/v1/accounts/acme/metrics", key=raw)

    assert response.status_code == 403
    assert "reads as nobody" in response.json()["detail"]


def test_a_key_reads_as_its_person_not_its_creator(snapshot, people, make_user):
    finance = make_user(Role.FINANCE, email="fin@example.test", name="Fin Ance")
    _, raw = api_key_create(name="ae sync", scopes=[ApiKey.Scope.READ], created_by=finance, acts_as=people["ae"])

    assert get("/api/v1/accounts/acme/metrics", key=raw).status_code == 200
    assert get("/api/v1/accounts/globex/metrics", key=raw).status_code == 404


def test_nobody_hands_a_key_more_than_they_may_see(snapshot, people, make_user):
    admin = make_user(Role.ADMIN, email="root@example.test", name="Ad Min")
    finance = make_user(Role.FINANCE, email="fin@example.test", name="Fin Ance")

    with pytest.raises(ApplicationError, match="would see more than you may"):
        api_key_create(name="x", scopes=[ApiKey.Scope.READ], created_by=people["ae"], acts_as=people["other"])
    with pytest.raises(ApplicationError, match="would see more than you may"):
        api_key_create(name="x", scopes=[ApiKey.Scope.READ], created_by=finance, acts_as=admin)
    assert api_key_create(name="x", scopes=[ApiKey.Scope.READ], created_by=admin, acts_as=finance)[0].acts_as == finance


def test_a_key_whose_creator_left_is_a_403(snapshot, people, key_for):
    _, raw = key_for(people["ae"])
    people["ae"].is_active = False
    people["ae"].save()

    response = get("/api/v1/metrics", key=raw)

    assert response.status_code == 403
    assert "no longer active" in response.json()["detail"]


def test_a_revoked_key_is_a_401(snapshot, people, key_for):
    key, raw = key_for(people["ae"])
    api_key_revoke(key=key)

    assert get("/api/v1/accounts/acme/metrics", key=raw).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/accounts/acme/metrics", "/api/v1/metrics", "/api/v1/alerts"])
def test_no_credentials_is_a_401(snapshot, path):
    response = get(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_logged_in_session_works_with_the_same_rules(snapshot, people):
    client = Client()
    client.force_login(people["ae"])

    mine = get("/api/v1/accounts/acme/metrics", client=client)
    theirs = get("/api/v1/accounts/globex/metrics", client=client)

    assert mine.status_code == 200
    assert without_health(mine.json()) == ACME
    assert theirs.status_code == 404


def test_a_snapshot_read_is_a_handful_of_queries(snapshot, people, key_for, settings, django_assert_max_num_queries):
    # Production counts rate limits in Redis; the tests' database cache would add ~11 queries.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _, raw = key_for(people["ae"])
    get("/api/v1/accounts/acme/metrics", key=raw)  # the key's first use records last_used_at
    client = Client()
    client.force_login(people["ae"])

    # Key: the key, its creator, the AE's ownerships, their divisions, the snapshot with its
    # account, its active alerts (count and revenue at risk in one aggregate).
    with django_assert_max_num_queries(6):
        assert get("/api/v1/accounts/acme/metrics", key=raw, as_of="2026-04-30").status_code == 200
    # Session: the session, the user, the newest snapshot day, ownerships, divisions, the snapshot, alerts.
    with django_assert_max_num_queries(7):
        assert get("/api/v1/accounts/acme/metrics", client=client).status_code == 200


# --- GET /api/v1/metrics -------------------------------------------------------------------

# The company as of 2026-04-30, each account on its own rows:
#   run rate (6,000 + 300) × 365 / 30 = 76,650.00; burn 76,650 / 240,000 = 0.3194
#   NRR: nobody had revenue a year before → null
#   GUR: min(13,500, 500) + min(900, 610) over 500 + 610 = 1.0000
#   median TTFBE: acme only → 10.0; velocity: acme only (land > 90 days ago) → 1.2894
#   consumption 14,000 / 240,000 = 0.0583; net-new (13,000 + 290) × 365 / 90 = 53,898.33
#   realization: committed 240,000 × 120 / 365 = 78,904.11; realized 14,000.00; gap 64,904.11; rate 0.1774
COMPANY = {
    "as_of": "2026-04-30",
    "segment": "",
    "scope": "company",
    "source": "snapshot",
    "accounts": 2,
    "run_rate": "76650.00",
    "committed_arr": "240000.00",
    "burn_rate": "0.3194",
    "nrr": None,
    "gur": "1.0000",
    "median_ttfbe_days": "10.0",
    "expansion_velocity": "1.2894",
    "consumption_rate": "0.0583",
    "net_new_arr": "53898.33",
    "realization": {"committed": "78904.11", "realized": "14000.00", "gap": "64904.11", "rate": "0.1774"},
}
# acme alone (the enterprise segment, and the AE's own accounts).
ACME_PORTFOLIO = {
    **COMPANY,
    "accounts": 1,
    "run_rate": "73000.00",
    "burn_rate": "0.3042",
    "net_new_arr": "52722.22",
}


def test_a_leader_reads_the_stored_company_metrics(snapshot, people, key_for):
    _, raw = key_for(people["leader"])

    response = get("/api/v1/metrics", key=raw)

    assert response.status_code == 200
    assert response.json() == COMPANY


def test_product_reads_a_stored_segment(snapshot, people, key_for):
    _, raw = key_for(people["product"])

    body = get("/api/v1/metrics", key=raw, segment="enterprise", as_of="2026-04-30").json()

    assert body == {**ACME_PORTFOLIO, "segment": "enterprise", "scope": "segment"}


def test_the_company_is_computed_live_on_a_day_without_a_stored_row(snapshot, people, key_for):
    _, raw = key_for(people["leader"])
    PortfolioMetrics.objects.all().delete()

    assert get("/api/v1/metrics", key=raw).json() == {**COMPANY, "source": "live"}
    assert get("/api/v1/metrics", key=raw, segment="enterprise").json() == {
        **ACME_PORTFOLIO,
        "segment": "enterprise",
        "scope": "segment",
        "source": "live",
    }


def test_an_ae_gets_the_portfolio_of_their_own_accounts_live(snapshot, people, key_for):
    _, raw = key_for(people["ae"])

    assert get("/api/v1/metrics", key=raw).json() == {**ACME_PORTFOLIO, "scope": "my accounts", "source": "live"}
    # Their accounts in another segment: none.
    empty = get("/api/v1/metrics", key=raw, segment="smb").json()
    assert (empty["accounts"], empty["run_rate"], empty["burn_rate"], empty["scope"]) == (
        0,
        "0.00",
        None,
        "my accounts",
    )


def test_an_unknown_segment_is_a_400_naming_it(snapshot, people, key_for):
    _, raw = key_for(people["leader"])

    response = get("/api/v1/metrics", key=raw, segment="galactic")

    assert response.status_code == 400
    assert response.json() == {"detail": "segment must be one of enterprise, mid-market, smb; not 'galactic'."}


# --- GET /api/v1/alerts --------------------------------------------------------------------


@pytest.fixture
def alerts(book, people):
    acme, globex = book["acme"], book["globex"]

    def alert(account, kind, severity, state, risk, **extra):
        return Alert.objects.create(
            account=account,
            kind=kind,
            severity=severity,
            state=state,
            revenue_at_risk=Decimal(risk),
            opened_on=D(2026, 4, 1),
            last_seen_on=AS_OF,
            **extra,
        )

    return {
        "floor": alert(
            acme,
            AlertKind.BELOW_FLOOR,
            Severity.CRITICAL,
            AlertState.OPEN,
            "12000",
            owner=people["csm"],
            escalated_to=people["ae"],
            gate="clawback_12m",
            gate_on=D(2027, 1, 1),
        ),
        "plateau": alert(acme, AlertKind.PLATEAU, Severity.MEDIUM, AlertState.SNOOZED, "3000.5", owner=people["csm"]),
        "resolved": alert(
            acme, AlertKind.SUDDEN_DECLINE, Severity.HIGH, AlertState.RESOLVED, "9000", owner=people["csm"]
        ),
        "globex": alert(globex, AlertKind.NO_FIRST_USAGE, Severity.HIGH, AlertState.OPEN, "5000"),
    }


def test_alerts_list_every_field_in_the_queues_order(alerts, people, key_for):
    _, raw = key_for(people["leader"])
    opened_at = dt.datetime(2026, 4, 1, 6, 30, 0, 250000, tzinfo=dt.UTC)
    Alert.objects.filter(pk=alerts["floor"].pk).update(opened_at=opened_at)

    body = get("/api/v1/alerts", key=raw, state="all").json()

    assert body["count"] == 4
    assert [row["id"] for row in body["results"]] == [
        alerts["floor"].pk,
        alerts["resolved"].pk,  # High 9,000 before High 5,000
        alerts["globex"].pk,
        alerts["plateau"].pk,
    ]
    floor = alerts["floor"]
    assert body["results"][0] == {
        "id": floor.pk,
        "kind": "below_floor",
        "severity": "Critical",
        "state": "open",
        "account": "acme",
        "owner": "csm@example.test",
        "escalated_to": "ae@example.test",
        "revenue_at_risk": "12000.00",
        "gate": "clawback_12m",
        "gate_on": "2027-01-01",
        "snoozed_until": None,
        "opened_at": "2026-04-01T06:30:00.250Z",
        "opened_on": "2026-04-01",
        "last_seen_on": "2026-04-30",
    }
    assert body["results"][2]["owner"] is None
    assert body["results"][2]["gate"] is None
    assert body["results"][3]["revenue_at_risk"] == "3000.50"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "active"}, ["floor", "globex", "plateau"]),
        ({"state": "resolved"}, ["resolved"]),
        ({"kind": "plateau"}, ["plateau"]),
        ({"account": "globex"}, ["globex"]),
        ({"account": "acme", "state": "active"}, ["floor", "plateau"]),
        ({"account": "ghost"}, []),
        ({}, ["floor", "globex", "plateau"]),  # the active ones by default, as the queue shows them
        ({"state": "all"}, ["floor", "resolved", "globex", "plateau"]),
        ({"limit": "2", "state": "all"}, ["floor", "resolved"]),
        ({"limit": "2", "offset": "2", "state": "all"}, ["globex", "plateau"]),
    ],
)
def test_alert_filters(alerts, people, key_for, params, expected):
    _, raw = key_for(people["leader"])

    body = get("/api/v1/alerts", key=raw, **params).json()

    assert [row["id"] for row in body["results"]] == [alerts[name].pk for name in expected]
    if "limit" not in params:
        assert body["count"] == len(expected)
    else:
        assert body["count"] == 4


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"state": "closed"}, "state"),
        ({"kind": "fire"}, "kind"),
        ({"limit": "501"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_an_invalid_alert_filter_is_a_400_naming_the_parameter(alerts, people, key_for, params, name):
    _, raw = key_for(people["leader"])

    response = get("/api/v1/alerts", key=raw, **params)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{name} must be ")


def test_an_ae_sees_the_alerts_on_their_accounts_only(alerts, people, key_for):
    _, ae_key = key_for(people["ae"])
    _, other_key = key_for(people["other"])
    _, csm_key = key_for(people["csm"])

    def ids(raw):
        return {row["id"] for row in get("/api/v1/alerts", key=raw).json()["results"]}

    acme_alerts = {alerts[name].pk for name in ("floor", "plateau")}  # active only, by default
    assert ids(ae_key) == acme_alerts
    assert ids(other_key) == {alerts["globex"].pk}
    assert ids(csm_key) == acme_alerts


def test_the_metrics_api_carries_the_accounts_open_alerts_and_revenue_at_risk_once(alerts, people, key_for):
    """Acme has a below-floor alert (12,000 at risk) and a plateau (3,000.50) open, one resolved:
    2 open, and 12,000 at risk (the largest, not 15,000.50), as its Alerts panel says."""
    _, raw = key_for(people["ae"])

    body = get("/api/v1/accounts/acme/metrics", key=raw).json()

    assert (body["open_alerts"], body["revenue_at_risk"]) == (2, "12000.00")


# --- The OpenAPI schema --------------------------------------------------------------------


def test_the_schema_documents_the_three_read_endpoints(client):
    schema = client.get("/api/v1/openapi.json").json()

    paths = schema["paths"]
    for path in ("/api/v1/accounts/{external_id}/metrics", "/api/v1/metrics", "/api/v1/alerts"):
        operation = paths[path]["get"]
        assert {"200", "400", "401", "403"} <= set(operation["responses"])
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert {"ReadKeyAuth", "SessionAuth"} == {name for entry in operation["security"] for name in entry}
    assert "404" in paths["/api/v1/accounts/{external_id}/metrics"]["get"]["responses"]
    burn = schema["components"]["schemas"]["AccountMetricsOut"]["properties"]["burn_rate"]
    assert DEFINITIONS["burn_rate"][1] in burn["description"]
    nrr = schema["components"]["schemas"]["PortfolioOut"]["properties"]["nrr"]
    assert DEFINITIONS["nrr"][1] in nrr["description"]


# --- Every answer matches the published schema ---------------------------------------------

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


@pytest.fixture
def api_schema(db):
    """The live schema, called in process through Django's WSGI handler (as in test_api_schema).

    The handler must not close "old" connections after each request: that would close the
    test's own connection mid-transaction. django-ninja publishes OpenAPI 3.1, which
    schemathesis 3.x validates only behind its experimental flag.
    """
    experimental.OPEN_API_3_1.enable()
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.from_wsgi("/api/v1/openapi.json", WSGIHandler())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    experimental.OPEN_API_3_1.disable()


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/api/v1/accounts/{external_id}/metrics", {}, 200),
        ("/api/v1/accounts/{external_id}/metrics", {"as_of": "2026-03-31"}, 200),
        ("/api/v1/accounts/{external_id}/metrics", {"as_of": "nope"}, 400),
        ("/api/v1/metrics", {}, 200),
        ("/api/v1/metrics", {"segment": "smb", "as_of": "2026-03-31"}, 200),
        ("/api/v1/metrics", {"segment": "x"}, 400),
        ("/api/v1/alerts", {"state": "active"}, 200),
        ("/api/v1/alerts", {"limit": "9999"}, 400),
    ],
)
def test_answers_conform_to_the_published_schema(api_schema, snapshot, alerts, people, key_for, path, query, status):
    _, raw = key_for(people["leader"])
    path_parameters = {"external_id": "globex"} if "{external_id}" in path else None
    case = api_schema[path]["GET"].make_case(query=query, path_parameters=path_parameters)

    response = case.call_and_validate(headers={"Authorization": f"Bearer {raw}"}, checks=CHECKS)

    assert response.status_code == status


def test_an_unknown_account_conforms(api_schema, snapshot, people, key_for):
    _, raw = key_for(people["ae"])
    case = api_schema["/api/v1/accounts/{external_id}/metrics"]["GET"].make_case(
        path_parameters={"external_id": "globex"}
    )

    response = case.call_and_validate(headers={"Authorization": f"Bearer {raw}"}, checks=CHECKS)

    assert response.status_code == 404


def run_create_api_key(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_api_key_as_a_person_reads_their_data_and_nothing_more(snapshot, people):
    raw, said = run_create_api_key("ae laptop", "--scope", "read", "--as", people["ae"].email.upper())

    assert "What " in said and "own (and their teams') accounts" in said and "not shown again" in said
    assert get("/api/v1/accounts/acme/metrics", key=raw).status_code == 200
    assert get("/api/v1/accounts/globex/metrics", key=raw).status_code == 404
    assert get("/api/v1/metrics", key=raw).json()["scope"] == "my accounts"


def test_create_api_key_refuses_a_read_key_without_a_person(db):
    with pytest.raises(CommandError, match=r"must read as a person.*--as EMAIL"):
        run_create_api_key("bi", "--scope", "read")
    with pytest.raises(CommandError, match="nobody has this email"):
        run_create_api_key("bi", "--scope", "read", "--as", "ghost@example.test")
    assert not ApiKey.objects.exists()


def test_create_api_key_makes_an_events_key_without_a_person(db):
    raw, said = run_create_api_key("pipeline", "--scope", "events:write")

    assert raw.startswith("rvk_") and "Nothing: it can only send usage events." in said
    assert ApiKey.objects.get().acts_as is None
