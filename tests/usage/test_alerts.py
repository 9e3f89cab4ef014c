"""Alert rules (docs/metrics.md, "Alerts") and their nightly sync.

The rules are pure: hand-built ``Inputs`` → ``derive`` → ``evaluate``, each kind firing
and, just across its boundary, not firing. Then ``refresh_metrics`` against the
database: one alert per account and kind, clearing, resolving, snoozing, owners,
escalation, forward-only alerts, settings, snapshots and a query-count guard.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from accounts.models import Account, Contract, OwnerRole, Ownership, PricingModel, Segment
from revops.models import Role
from usage.models import (
    AccountMetrics,
    Alert,
    AlertKind,
    AlertSettings,
    AlertState,
    DailyRollup,
    Gate,
    Meter,
    MetricsRefresh,
    PortfolioMetrics,
    Severity,
)
from usage.signals.alerts import evaluate
from usage.signals.metrics import Inputs, Metrics, Thresholds, derive
from usage.signals.services import alert_act, refresh_metrics

D = dt.date
T = Thresholds()
AS_OF = D(2026, 6, 30)
_ids = itertools.count(1)


# --- The pure path ------------------------------------------------------------------------


def metrics(*, days_since_land: int | None = None, **fields) -> Metrics:
    """Metrics as of AS_OF from hand-set inputs; usage began long ago unless told otherwise."""
    fields.setdefault("first_usage_on", D(2025, 1, 1))
    land = None if days_since_land is None else AS_OF - dt.timedelta(days=days_since_land)
    return derive(Inputs(account_id=1, as_of=AS_OF, land_on=land, **fields), T, feature_count=0)


def fired(m: Metrics) -> dict:
    return {c.kind: c for c in evaluate(m, T)}


def commit(committed: str, daily: str, **fields) -> Metrics:
    """``committed`` ARR burning ``daily`` a day over the trailing 30 days (run rate 365 × daily)."""
    return metrics(committed_arr=Decimal(committed), rev_n=Decimal(daily) * 30, **fields)


def test_below_floor_fires_at_the_90_day_checkpoint_under_25_percent():
    # 24.99 a day → 9,121.35 a year / 36,500 = 0.2499.
    found = fired(commit("36500", "24.99", days_since_land=90))

    alert = found[AlertKind.BELOW_FLOOR]
    assert alert.severity == Severity.CRITICAL  # inside the clawback window
    assert alert.revenue_at_risk == Decimal("27378.65")  # 36,500 − 9,121.35
    # Landed Apr 1 2026: the 12-month clawback is on Apr 1 2027.
    assert (alert.gate, alert.gate_on) == (Gate.CLAWBACK_12M, D(2027, 4, 1))
    assert alert.details["burn_rate"] == "0.2499"


def test_below_floor_does_not_fire_at_exactly_25_percent():
    assert AlertKind.BELOW_FLOOR not in fired(commit("36500", "25", days_since_land=90))  # 9,125 / 36,500


def test_below_floor_does_not_fire_before_the_checkpoint():
    assert AlertKind.BELOW_FLOOR not in fired(commit("36500", "24.99", days_since_land=89))


def test_below_floor_after_the_clawback_window_is_high_with_no_gate():
    alert = fired(commit("36500", "24.99", days_since_land=365))[AlertKind.BELOW_FLOOR]

    assert alert.severity == Severity.HIGH
    assert (alert.gate, alert.gate_on) == (Gate.NONE, None)


def trend(previous: str, recent: str, *, dip: int = 0) -> list[Decimal]:
    """63 days of daily revenue: ``previous`` a day for the 4 weeks before the last 4, then
    ``recent`` a day (the last ``dip`` days at 0)."""
    days = [Decimal(previous)] * 35 + [Decimal(recent)] * 28
    for k in range(1, dip + 1):
        days[-k] = Decimal(0)
    return days


def test_clawback_risk_fires_when_the_12_month_projection_is_under_40_percent():
    # Landed 305 days ago: 60 days to the 12-month mark. Robust run rate 50 × 365 = 18,250;
    # 4 weeks before 55 × 365 = 20,075. 18,250 + (18,250 − 20,075) × 60 / 28 = 14,339.29,
    # and 14,339.29 / 36,500 = 0.3929.
    m = commit("36500", "50", series=trend("55", "50"), days_since_land=305)

    alert = fired(m)[AlertKind.CLAWBACK_RISK]

    assert alert.severity == Severity.HIGH
    assert alert.revenue_at_risk == Decimal("22160.71")  # 36,500 − 14,339.29
    assert (alert.gate, alert.gate_on) == (Gate.CLAWBACK_12M, D(2026, 8, 29))  # Aug 29 2025 + 365
    assert alert.details["projected_burn"] == "0.3929"
    assert alert.details["projected_run_rate_at_12_months"] == "14339.29"


def test_clawback_risk_does_not_fire_at_exactly_40_percent_projected():
    # 28 days left: 18,250 + (18,250 − 60 × 365) = 14,600 / 36,500 = 0.40 exactly.
    assert AlertKind.CLAWBACK_RISK not in fired(commit("36500", "50", series=trend("60", "50"), days_since_land=337))
    assert AlertKind.CLAWBACK_RISK in fired(commit("36500", "50", series=trend("60.01", "50"), days_since_land=337))


def test_a_four_day_dip_does_not_project_a_clawback():
    """A straight line through a short dip used to put the whole commitment at risk."""
    m = commit("36500", "43.33", series=trend("50", "50", dip=4), days_since_land=200)

    assert AlertKind.CLAWBACK_RISK not in fired(m)


@pytest.mark.parametrize("days_since_land", [89, 365])
def test_clawback_risk_is_only_judged_between_the_checkpoint_and_12_months(days_since_land):
    # A steep fall (100 → 50 a day) that would project to zero.
    m = commit("36500", "50", series=trend("100", "50"), days_since_land=days_since_land)

    assert AlertKind.CLAWBACK_RISK not in fired(m)


WEEK = [Decimal(100)] * 5 + [Decimal(40)] * 2


def series_with_drop(days: int) -> list[Decimal]:
    """Nine steady weeks (weekdays 100, weekends 40) with the last ``days`` days at 40%."""
    series = WEEK * 9
    return series[:-days] + [v * Decimal("0.4") for v in series[-days:]]


def test_sudden_decline_fires_after_three_declined_days():
    m = commit("36500", "80", series=series_with_drop(3))

    alert = fired(m)[AlertKind.SUDDEN_DECLINE]

    # Fri, Sat, Sun: expected 100 + 40 + 40 = 180, actual 40 + 16 + 16 = 72;
    # (180 − 72) × 365 / 3 = 13,140 at risk, over 10% of 36,500: high.
    assert alert.revenue_at_risk == Decimal("13140.00")
    assert alert.severity == Severity.HIGH
    assert alert.details == {"days": 3, "expected": "180.00", "actual": "72.00", "drop": "0.40"}


def test_sudden_decline_under_a_tenth_of_the_commitment_is_medium():
    m = commit("365000", "800", series=series_with_drop(3))  # 13,140 < 36,500

    assert fired(m)[AlertKind.SUDDEN_DECLINE].severity == Severity.MEDIUM


def test_sudden_decline_does_not_fire_after_two_declined_days():
    assert AlertKind.SUDDEN_DECLINE not in fired(commit("36500", "80", series=series_with_drop(2)))


def plateau(committed: str, *, now: str, halfway: str = "2000", then: str = "2000", days_since_land: int = 91):
    return metrics(
        committed_arr=Decimal(committed),
        rev_n=Decimal(now),
        rev_n_half_plateau_ago=Decimal(halfway),
        rev_n_plateau_ago=Decimal(then),
        days_since_land=days_since_land,
    )


def test_plateau_fires_when_run_rate_stays_within_5_percent_for_28_days():
    # 2,000 → 2,000 (14 days ago) → 2,100 now: +5% exactly. Run rate 25,550 / 73,000 = 0.35.
    alert = fired(plateau("73000", now="2100"))[AlertKind.PLATEAU]

    assert alert.severity == Severity.MEDIUM
    assert alert.revenue_at_risk == Decimal("25550.00")  # 73,000 × 0.70 − 25,550
    assert alert.details["change"] == "0.0500"


@pytest.mark.parametrize(
    "m",
    [
        pytest.param(plateau("73000", now="2101"), id="grew 5.05%"),
        pytest.param(plateau("73000", now="2000", halfway="2101"), id="moved 5.05% halfway"),
        pytest.param(plateau("73000", now="2100", days_since_land=90), id="still in the ramp"),
        pytest.param(plateau("36500", now="2100"), id="burn at 70%"),
    ],
)
def test_plateau_does_not_fire_across_its_boundaries(m):
    assert AlertKind.PLATEAU not in fired(m)


def test_plateau_fires_just_under_the_expand_band():
    # 25,550 / 36,600 = 0.6981.
    assert AlertKind.PLATEAU in fired(plateau("36600", now="2100"))


def test_no_first_usage_fires_30_days_after_start():
    alert = fired(metrics(committed_arr=Decimal(36500), first_usage_on=None, days_since_land=30))[
        AlertKind.NO_FIRST_USAGE
    ]

    assert alert.severity == Severity.HIGH
    assert alert.revenue_at_risk == Decimal(36500)
    assert alert.details == {"days_since_start": 30, "threshold_days": 30}


def test_no_first_usage_is_critical_after_twice_the_wait():
    m = metrics(committed_arr=Decimal(36500), first_usage_on=None, days_since_land=60)

    assert fired(m)[AlertKind.NO_FIRST_USAGE].severity == Severity.CRITICAL


def test_no_first_usage_does_not_fire_on_day_29_or_once_usage_began():
    assert AlertKind.NO_FIRST_USAGE not in fired(metrics(first_usage_on=None, days_since_land=29))
    assert AlertKind.NO_FIRST_USAGE not in fired(metrics(first_usage_on=AS_OF, days_since_land=45))
    assert AlertKind.NO_FIRST_USAGE not in fired(metrics(first_usage_on=None))  # no contract


@pytest.mark.parametrize(
    ("used", "kinds"),
    [
        ("699.99", set()),
        ("700", {AlertKind.INCLUDED_70}),
        ("899.99", {AlertKind.INCLUDED_70}),
        ("900", {AlertKind.INCLUDED_90}),  # one or the other, never both
    ],
)
def test_included_volume_alerts_at_70_and_90_percent(used, kinds):
    found = fired(metrics(included_units=Decimal(1000), included_used=Decimal(used)))

    assert set(found) == kinds
    if AlertKind.INCLUDED_90 in found:
        assert found[AlertKind.INCLUDED_90].severity == Severity.MEDIUM
    if AlertKind.INCLUDED_70 in found:
        assert found[AlertKind.INCLUDED_70].severity == Severity.LOW


CREDITS_END = D(2026, 12, 31)


def credits(used: str, *, daily: str = "0", ends: dt.date = CREDITS_END) -> Metrics:
    return metrics(
        credits=Decimal(10000),
        credits_used=Decimal(used),
        credits_end=ends,
        rev_n=Decimal(daily) * 30,
        credits_rev_n=Decimal(daily) * 30,
    )


def test_credits_low_fires_at_20_percent_left():
    # 2,000 of 10,000 left, burn unknown (no recent usage): low but not dated.
    alert = fired(credits("8000"))[AlertKind.CREDITS_LOW]

    assert alert.severity == Severity.MEDIUM
    assert alert.details["balance"] == "2000.00"


def test_credits_low_does_not_fire_just_above_20_percent():
    assert AlertKind.CREDITS_LOW not in fired(credits("7999.99"))


def test_credits_projected_to_run_out_before_term_end_fire():
    # 5,000 left at 100 a day: 50 days → runs out Aug 19, a day before the term ends.
    alert = fired(credits("5000", daily="100", ends=D(2026, 8, 20)))[AlertKind.CREDITS_LOW]

    assert alert.severity == Severity.MEDIUM  # more than 30 days away
    assert alert.revenue_at_risk == Decimal(0)  # consuming faster than bought: an opportunity, not a risk
    assert alert.details["run_out_on"] == "2026-08-19"


def test_credits_that_last_to_the_term_end_do_not_fire():
    assert AlertKind.CREDITS_LOW not in fired(credits("5000", daily="100", ends=D(2026, 8, 19)))


def test_credits_running_out_within_30_days_are_high():
    # 2,000 left at 100 a day: Jul 20.
    assert fired(credits("8000", daily="100"))[AlertKind.CREDITS_LOW].severity == Severity.HIGH


def test_over_commit_fires_above_100_percent_burn():
    # 3,000.30 × 365 / 30 = 36,503.65 / 36,500 = 1.0001.
    alert = fired(commit("36500", "100.01"))[AlertKind.OVER_COMMIT]

    assert alert.severity == Severity.LOW
    assert alert.details == {"burn_rate": "1.0001", "run_rate": "36503.65", "committed_arr": "36500"}


def test_over_commit_does_not_fire_at_exactly_100_percent():
    assert AlertKind.OVER_COMMIT not in fired(commit("36500", "100"))


def test_a_healthy_account_has_no_alerts():
    # Burn 0.8 (expand band), steady, 200 days in, usage since day 1.
    m = commit("36500", "80", rev_prior_n=Decimal(2400), days_since_land=200, series=WEEK * 9)

    assert evaluate(m, T) == []


# --- The nightly sync (database) ----------------------------------------------------------


def make_account(external_id: str, *, segment: str = Segment.ENTERPRISE, parent: Account | None = None) -> Account:
    return Account.objects.create(external_id=external_id, name=external_id.title(), segment=segment, parent=parent)


def make_contract(account: Account, start: dt.date, end: dt.date, committed: str = "0", **extra) -> Contract:
    extra.setdefault("pricing_model", PricingModel.COMMIT)
    return Contract.objects.create(
        external_id=f"{account.external_id}-c{next(_ids)}",
        account=account,
        signed_on=start,
        start_on=start,
        end_on=end,
        committed_arr=Decimal(committed),
        **extra,
    )


def spend(account: Account, meter: Meter, first: dt.date, last: dt.date, revenue: str, quantity: str = "1") -> None:
    DailyRollup.objects.bulk_create(
        DailyRollup(
            account=account,
            meter=meter,
            day=first + dt.timedelta(days=k),
            quantity=Decimal(quantity),
            revenue=Decimal(revenue),
            event_count=1,
        )
        for k in range((last - first).days + 1)
    )


def own(account: Account, person, role: str, start: dt.date, end: dt.date | None = None) -> Ownership:
    return Ownership.objects.create(account=account, person=person, role=role, start_on=start, end_on=end)


def spiky(name: str, meter: Meter, *, parent: Account | None = None) -> Account:
    """36,500 committed from Jun 1 2026, with one 3,100 day on Jun 15 and another on Aug 1.

    While a spike is in the trailing 30 days the run rate is 3,100 × 365 / 30 = 37,716.67,
    burn 1.0333: over commit (and nothing else: under 90 days, no decline baseline).
    Over commit as of Jun 15 – Jul 14 and Aug 1 – Aug 30; not as of Jul 15 – Jul 31.
    """
    account = make_account(name, parent=parent)
    make_contract(account, D(2026, 6, 1), D(2027, 5, 31), "36500")
    spend(account, meter, D(2026, 6, 15), D(2026, 6, 15), "3100")
    spend(account, meter, D(2026, 8, 1), D(2026, 8, 1), "3100")
    return account


@pytest.fixture
def acct(meter):
    return spiky("spiky", meter)


def alerts(account: Account) -> list[Alert]:
    return list(Alert.objects.filter(account=account).order_by("id"))


def history(alert: Alert) -> list[tuple[str, str, str]]:
    return [(e.action, e.from_state, e.to_state) for e in alert.events.order_by("id")]


def test_refresh_opens_an_alert_with_its_details(acct):
    result = refresh_metrics(as_of=D(2026, 6, 20))

    [alert] = alerts(acct)
    assert (alert.kind, alert.state, alert.severity) == (AlertKind.OVER_COMMIT, AlertState.OPEN, Severity.LOW)
    assert (alert.opened_on, alert.last_seen_on, alert.condition_active) == (D(2026, 6, 20), D(2026, 6, 20), True)
    assert alert.details["burn_rate"] == "1.0333"
    assert history(alert) == [("opened", "", AlertState.OPEN)]
    assert (result.alerts_opened, result.alerts_updated, result.alerts_cleared) == (1, 0, 0)


def test_a_refresh_of_a_past_day_stamps_the_history_with_that_day_not_the_run(acct):
    """A backfill (the demo's seed) used to stamp every event with the moment it ran."""
    refresh_metrics(as_of=D(2026, 6, 20))

    [alert] = alerts(acct)
    assert [e.at for e in alert.events.all()] == [dt.datetime(2026, 6, 21, tzinfo=dt.UTC)]


def test_rerunning_the_same_day_updates_alerts_and_never_duplicates_them(acct):
    refresh_metrics(as_of=D(2026, 6, 20))
    again = refresh_metrics(as_of=D(2026, 6, 20))

    [alert] = alerts(acct)
    assert (again.alerts_opened, again.alerts_updated, again.alerts_cleared) == (0, 1, 0)
    assert history(alert) == [("opened", "", AlertState.OPEN)]
    assert AccountMetrics.objects.filter(account=acct, as_of=D(2026, 6, 20)).count() == 1
    assert PortfolioMetrics.objects.filter(as_of=D(2026, 6, 20)).count() == 2  # company + enterprise


def test_a_condition_that_clears_marks_the_alert_cleared(acct):
    refresh_metrics(as_of=D(2026, 6, 20))
    result = refresh_metrics(as_of=D(2026, 7, 15))  # the Jun 15 spike has left the window

    [alert] = alerts(acct)
    assert (alert.state, alert.condition_active) == (AlertState.CLEARED, False)
    assert (alert.cleared_on, alert.last_seen_on) == (D(2026, 7, 15), D(2026, 6, 20))
    assert history(alert) == [("opened", "", AlertState.OPEN), ("cleared", AlertState.OPEN, AlertState.CLEARED)]
    assert (result.alerts_opened, result.alerts_updated, result.alerts_cleared) == (0, 0, 1)


def test_a_resolved_alert_whose_condition_persists_is_not_reopened(acct):
    refresh_metrics(as_of=D(2026, 6, 20))
    Alert.objects.filter(account=acct).update(state=AlertState.RESOLVED, outcome="Recommit signed")

    refresh_metrics(as_of=D(2026, 6, 21))

    [alert] = alerts(acct)
    assert (alert.state, alert.condition_active, alert.last_seen_on) == (AlertState.RESOLVED, True, D(2026, 6, 21))

    # When the condition ends the resolved alert keeps its state (no "cleared" step).
    refresh_metrics(as_of=D(2026, 7, 15))

    [alert] = alerts(acct)
    assert (alert.state, alert.condition_active, alert.cleared_on) == (AlertState.RESOLVED, False, D(2026, 7, 15))
    assert history(alert) == [("opened", "", AlertState.OPEN)]


def test_a_condition_that_comes_back_after_clearing_opens_a_new_alert(acct):
    refresh_metrics(as_of=D(2026, 6, 20))
    refresh_metrics(as_of=D(2026, 7, 15))
    result = refresh_metrics(as_of=D(2026, 8, 1))  # the second spike

    old, new = alerts(acct)
    assert (old.state, old.condition_active, old.opened_on) == (AlertState.CLEARED, False, D(2026, 6, 20))
    assert (new.state, new.condition_active, new.opened_on) == (AlertState.OPEN, True, D(2026, 8, 1))
    assert result.alerts_opened == 1


def test_a_snoozed_alert_returns_to_open_when_its_snooze_ends(acct):
    refresh_metrics(as_of=D(2026, 6, 20))
    Alert.objects.filter(account=acct).update(state=AlertState.SNOOZED, snoozed_until=D(2026, 6, 25))

    refresh_metrics(as_of=D(2026, 6, 24))
    [alert] = alerts(acct)
    assert (alert.state, alert.snoozed_until) == (AlertState.SNOOZED, D(2026, 6, 25))

    refresh_metrics(as_of=D(2026, 6, 25))
    [alert] = alerts(acct)
    assert (alert.state, alert.snoozed_until) == (AlertState.OPEN, None)
    assert history(alert)[-1] == ("snooze ended", AlertState.SNOOZED, AlertState.OPEN)


@pytest.mark.parametrize(("as_of", "owner"), [(D(2026, 6, 19), "alex"), (D(2026, 6, 20), "blair")])
def test_the_alert_owner_is_the_csm_on_the_as_of_day(acct, make_user, as_of, owner):
    alex, blair = make_user(Role.CSM, name="alex"), make_user(Role.CSM, name="blair")
    own(acct, alex, OwnerRole.CSM, D(2026, 1, 1), D(2026, 6, 19))
    own(acct, blair, OwnerRole.CSM, D(2026, 6, 20))

    refresh_metrics(as_of=as_of)

    [alert] = alerts(acct)
    assert alert.owner.name == owner


def test_an_open_alert_follows_the_account_to_its_new_csm_unless_assigned_by_hand(acct, make_user):
    alex, blair, cam = (make_user(Role.CSM, name=n) for n in ("alex", "blair", "cam"))
    own(acct, alex, OwnerRole.CSM, D(2026, 1, 1), D(2026, 6, 19))
    own(acct, blair, OwnerRole.CSM, D(2026, 6, 20))

    refresh_metrics(as_of=D(2026, 6, 19))
    refresh_metrics(as_of=D(2026, 6, 20))
    [alert] = alerts(acct)
    assert alert.owner == blair
    assert history(alert)[-1] == ("reassigned", "", "")

    alert_act(alert_ids=[alert.pk], actor=blair, action="assign", today=D(2026, 6, 20), assignee=cam)
    refresh_metrics(as_of=D(2026, 6, 21))
    alert.refresh_from_db()
    assert (alert.owner, alert.owner_pinned) == (cam, True)


def test_a_division_without_a_csm_inherits_its_parents(meter, make_user):
    casey = make_user(Role.CSM, name="casey")
    parent = make_account("parent")
    division = spiky("division", meter, parent=parent)
    own(parent, casey, OwnerRole.CSM, D(2026, 1, 1))

    refresh_metrics(as_of=D(2026, 6, 20))

    [alert] = alerts(division)
    assert alert.owner == casey
    # The parent rolls the division up (its burn is over commit too) and has the same CSM.
    [parents] = alerts(parent)
    assert parents.owner == casey


def test_risk_alerts_in_the_escalate_band_are_escalated_to_the_land_ae(acct, meter, make_user):
    csm, land_ae = make_user(Role.CSM, name="csm"), make_user(Role.AE, name="land")
    quiet = make_account("quiet")  # committed, never used: burn 0, band escalate
    make_contract(quiet, D(2026, 5, 1), D(2027, 4, 30), "36500")
    prepaid = make_account("prepaid")  # credits low (a risk), but no commitment: band none
    make_contract(prepaid, D(2026, 1, 1), D(2026, 12, 31), pricing_model=PricingModel.CREDITS, credits=Decimal(1000))
    spend(prepaid, meter, D(2026, 5, 1), D(2026, 5, 1), "900")
    for account in (quiet, prepaid, acct):
        own(account, csm, OwnerRole.CSM, D(2026, 1, 1))
        own(account, land_ae, OwnerRole.LAND_AE, D(2026, 1, 1))

    refresh_metrics(as_of=D(2026, 6, 1))  # quiet: 31 days without usage

    [no_usage] = alerts(quiet)
    assert no_usage.kind == AlertKind.NO_FIRST_USAGE
    assert (no_usage.owner, no_usage.escalated_to) == (csm, land_ae)
    assert [e.action for e in no_usage.events.order_by("id")] == ["opened", "escalated"]
    [credits_low] = alerts(prepaid)
    assert credits_low.kind == AlertKind.CREDITS_LOW
    assert (credits_low.owner, credits_low.escalated_to) == (csm, None)
    assert alerts(acct) == []  # Jun 1: the spike has not happened yet


def test_an_opportunity_alert_is_never_escalated(acct, make_user):
    land_ae = make_user(Role.AE, name="land")
    own(acct, land_ae, OwnerRole.LAND_AE, D(2026, 1, 1))

    refresh_metrics(as_of=D(2026, 6, 20))

    [alert] = alerts(acct)
    assert (alert.kind, alert.escalated_to) == (AlertKind.OVER_COMMIT, None)


def test_refreshing_an_earlier_day_rewrites_snapshots_but_leaves_alerts_alone(acct, meter):
    refresh_metrics(as_of=D(2026, 7, 15))  # nothing fires
    earlier = refresh_metrics(as_of=D(2026, 6, 20))  # over commit would, on this day

    assert earlier.alerts_evaluated is False
    assert alerts(acct) == []
    assert MetricsRefresh.objects.latest().alerts_evaluated is False
    snapshot = AccountMetrics.objects.get(account=acct, as_of=D(2026, 6, 20))
    assert (snapshot.run_rate, snapshot.burn_rate) == (Decimal("37716.67"), Decimal("1.0333"))

    DailyRollup.objects.filter(account=acct, day=D(2026, 6, 15)).update(revenue=Decimal(6200))
    refresh_metrics(as_of=D(2026, 6, 20))

    # 6,200 × 365 / 30 = 75,433.33; still one snapshot for the day, still no alert.
    snapshot = AccountMetrics.objects.get(account=acct, as_of=D(2026, 6, 20))
    assert snapshot.run_rate == Decimal("75433.33")
    assert alerts(acct) == []
    # The latest day can still be evaluated again.
    assert refresh_metrics(as_of=D(2026, 7, 15)).alerts_evaluated is True


def test_changing_alert_settings_changes_what_fires(acct, meter):
    quiet = make_account("quiet")
    make_contract(quiet, D(2026, 6, 1), D(2027, 5, 31), "36500")

    refresh_metrics(as_of=D(2026, 6, 21))  # 20 days without usage; the default waits 30
    assert alerts(quiet) == []
    assert AccountMetrics.objects.get(account=acct, as_of=D(2026, 6, 21)).band == "expand"  # burn 1.0333

    settings = AlertSettings.current()
    settings.no_usage_days = 14
    settings.expand_band = Decimal("1.05")
    settings.save()
    refresh_metrics(as_of=D(2026, 6, 21))

    [alert] = alerts(quiet)
    assert alert.kind == AlertKind.NO_FIRST_USAGE
    assert alert.details == {"days_since_start": 20, "threshold_days": 14}
    assert AccountMetrics.objects.get(account=acct, as_of=D(2026, 6, 21)).band == "adopt"  # 1.0333 < 1.05


def test_no_first_usage_through_the_refresh_fires_on_day_30(db):
    quiet = make_account("quiet")
    make_contract(quiet, D(2026, 6, 1), D(2027, 5, 31), "36500")

    refresh_metrics(as_of=D(2026, 6, 30))  # day 29
    assert alerts(quiet) == []

    refresh_metrics(as_of=D(2026, 7, 1))  # day 30
    [alert] = alerts(quiet)
    assert (alert.kind, alert.severity, alert.revenue_at_risk) == (AlertKind.NO_FIRST_USAGE, Severity.HIGH, 36500)


def test_included_volume_alerts_follow_the_month(meter):
    hybrid = make_account("hybrid", segment=Segment.MID_MARKET)
    make_contract(
        hybrid,
        D(2026, 1, 1),
        D(2026, 12, 31),
        pricing_model=PricingModel.HYBRID,
        included_units=Decimal(1000),
        included_meter=meter.key,
    )
    spend(hybrid, meter, D(2026, 6, 10), D(2026, 6, 10), "0.7", quantity="700")
    spend(hybrid, meter, D(2026, 6, 25), D(2026, 6, 25), "0.25", quantity="250")

    refresh_metrics(as_of=D(2026, 6, 20))  # 700 of 1,000
    refresh_metrics(as_of=D(2026, 6, 25))  # 950 of 1,000
    refresh_metrics(as_of=D(2026, 7, 1))  # a new month: nothing used yet

    seventy, ninety = alerts(hybrid)
    assert (seventy.kind, seventy.opened_on, seventy.cleared_on) == (
        AlertKind.INCLUDED_70,
        D(2026, 6, 20),
        D(2026, 6, 25),
    )
    assert (ninety.kind, ninety.opened_on, ninety.cleared_on) == (AlertKind.INCLUDED_90, D(2026, 6, 25), D(2026, 7, 1))
    assert ninety.details["share"] == "0.9500"


def test_refresh_writes_account_and_portfolio_metrics(meter):
    parent = make_account("parent")
    division = make_account("division", parent=parent)
    smb = make_account("small", segment=Segment.SMB)
    make_contract(parent, D(2026, 1, 1), D(2026, 12, 31), "36500")
    make_contract(division, D(2026, 1, 1), D(2026, 12, 31), "7300")
    make_contract(smb, D(2026, 1, 1), D(2026, 12, 31), "18250")
    for account, daily in ((parent, "40"), (division, "20"), (smb, "25")):
        spend(account, meter, D(2026, 6, 1), D(2026, 6, 30), daily)

    result = refresh_metrics(as_of=D(2026, 6, 30))

    assert result.accounts == 3
    rows = {m.account_id: m for m in AccountMetrics.objects.filter(as_of=D(2026, 6, 30))}
    # Parent: (40 + 20) × 365 = 21,900 over 36,500 + 7,300 = 43,800 → 0.5.
    assert (rows[parent.id].run_rate, rows[parent.id].committed_arr) == (Decimal("21900.00"), Decimal(43800))
    assert (rows[parent.id].burn_rate, rows[parent.id].band) == (Decimal("0.5000"), "adopt")
    # Division: 20 × 365 = 7,300 over 7,300 → 1.0. Small: 25 × 365 = 9,125 / 18,250 = 0.5.
    assert (rows[division.id].run_rate, rows[division.id].burn_rate) == (Decimal("7300.00"), Decimal("1.0000"))
    assert (rows[smb.id].run_rate, rows[smb.id].burn_rate) == (Decimal("9125.00"), Decimal("0.5000"))
    assert rows[parent.id].revenue_30d == Decimal("1800.00")
    assert len(rows[parent.id].trend) == 56
    assert [c["key"] for c in rows[parent.id].health_components] == ["burn", "trend", "anomalies", "recency", "pacing"]
    # Landed Jan 1, 180 days ago: past the checkpoint, the clawback is next.
    assert (rows[parent.id].next_gate, rows[parent.id].next_gate_on) == ("clawback_12m", D(2027, 1, 1))

    portfolio = {p.segment: p for p in PortfolioMetrics.objects.filter(as_of=D(2026, 6, 30))}
    assert set(portfolio) == {"", Segment.ENTERPRISE, Segment.SMB}  # no mid-market accounts, no row
    company, enterprise, small = portfolio[""], portfolio[Segment.ENTERPRISE], portfolio[Segment.SMB]
    # Company: each account once: (40 + 20 + 25) × 365 = 31,025 over 62,050 → 0.5.
    assert (company.accounts, company.run_rate, company.committed_arr) == (3, Decimal("31025.00"), Decimal(62050))
    assert company.burn_rate == Decimal("0.5000")
    # Realization over Jul 1 2025 – Jun 30 2026: 62,050 × 181 / 365 = 30,770 committed;
    # 85 × 30 = 2,550 realized.
    assert (company.realization_committed, company.realization_realized) == (Decimal("30770.00"), Decimal("2550.00"))
    assert (enterprise.accounts, enterprise.run_rate, enterprise.committed_arr) == (2, Decimal("21900.00"), 43800)
    assert (small.accounts, small.run_rate, small.burn_rate) == (1, Decimal("9125.00"), Decimal("0.5000"))


def test_a_ratio_too_large_for_its_column_does_not_fail_the_refresh(acct, meter):
    trial = make_account("trial", segment=Segment.SMB)
    spend(trial, meter, D(2026, 5, 15), D(2026, 5, 15), "0.000002")  # one priced token in May
    spend(trial, meter, D(2026, 6, 15), D(2026, 6, 15), "5000")

    result = refresh_metrics(as_of=D(2026, 6, 30))

    # MoM 5,000 / 0.000002 − 1 ≈ 2.5 × 10^9 does not fit numeric(12, 4): stored at its limit,
    # and every other account is still refreshed.
    assert result.accounts == 2
    assert AccountMetrics.objects.get(account=trial, as_of=D(2026, 6, 30)).mom_growth == Decimal("99999999.9999")
    assert AccountMetrics.objects.filter(account=acct, as_of=D(2026, 6, 30)).exists()


# Every query refresh_metrics makes is a set operation: the count is the same for 3
# accounts or 30, opening alerts or updating them (34 on a first run, 4 of which create
# the AlertSettings row, 5 fill and drop the shared account-day table and 3 record the
# opened alerts' webhook messages, one statement per event type whatever their number).
REFRESH_MAX_QUERIES = 34


@pytest.mark.parametrize("accounts", [3, 30])
def test_refresh_query_count_does_not_grow_with_accounts(meter, make_user, django_assert_max_num_queries, accounts):
    csm, land_ae = make_user(Role.CSM), make_user(Role.AE)
    for n in range(accounts):
        account = spiky(f"acct-{n}", meter)
        own(account, csm, OwnerRole.CSM, D(2026, 1, 1))
        own(account, land_ae, OwnerRole.LAND_AE, D(2026, 1, 1))

    with django_assert_max_num_queries(REFRESH_MAX_QUERIES):
        opened = refresh_metrics(as_of=D(2026, 6, 20))
    with django_assert_max_num_queries(REFRESH_MAX_QUERIES):
        rerun = refresh_metrics(as_of=D(2026, 6, 20))

    assert (opened.alerts_opened, rerun.alerts_updated) == (accounts, accounts)
