"""Pilot reports: pilot accounts against comparable accounts outside the pilot."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from comp.models import Plan, PlanType, PlanVersion
from reviews.pilots import PilotAccount, comparable, pilot_plans, pilot_report

from .conftest import END, make_pilot

D = Decimal


def test_pilot_against_comparable_accounts(pilot_world):
    report = pilot_report(make_pilot(["p1", "p2", "p3"]))

    assert (report.through, report.days, report.before_start) == (END, 60, dt.date(2026, 1, 31))
    assert [r.account.external_id for r in report.pilot.accounts] == ["p1", "p2", "p3"]
    assert [r.account.external_id for r in report.comparison.accounts] == ["c1", "c2", "c3"]
    # Pilot totals: before 60 × 400 = 24,000; in window 60 × 507 = 30,420; net-new 6,420.
    assert (report.pilot.revenue_before, report.pilot.revenue_in_window) == (D(24000), D(30420))
    assert report.pilot.net_new == D(6420)
    assert report.pilot.growth.quantize(D("0.0001")) == D("0.2675")
    assert [r.account.net_new for r in report.pilot.accounts] == [D(2640), D(2520), D(1260)]
    assert [r.velocity for r in report.pilot.accounts] == [D("0.2"), D("0.1"), D("0.1")]
    # Comparison: before 60 × 550 = 33,000; in window 60 × 560.5 = 33,630; net-new 630.
    assert (report.comparison.revenue_before, report.comparison.net_new) == (D(33000), D(630))
    assert report.comparison.growth.quantize(D("0.0001")) == D("0.0191")
    # Medians and differences: net-new 2,520 vs 0; velocity 10% vs 0%; activities 1 vs 0.
    assert (report.pilot.median_net_new, report.comparison.median_net_new) == (D(2520), D(0))
    assert report.net_new_median_difference == D(2520)
    assert (report.pilot.median_velocity, report.comparison.median_velocity) == (D("0.1"), D(0))
    assert report.velocity_median_difference == D("0.1")
    assert (report.pilot.activities, report.comparison.activities) == (4, 2)
    assert (report.pilot.median_activities, report.comparison.median_activities) == (D(1), D(0))
    assert report.activities_median_difference == D(1)
    assert report.missing == ()


def test_a_running_pilot_is_measured_to_date(pilot_world):
    # To 2026-04-30: 30 days in the window against the 30 before (both at the flat rates).
    report = pilot_report(make_pilot(["p1", "p2", "p3"]), as_of=dt.date(2026, 4, 30))

    assert (report.through, report.days) == (dt.date(2026, 4, 30), 30)
    assert report.pilot.net_new == D(30 * 107)
    # Over 30 days the velocity is the whole growth: P1 144/100 − 1.
    assert report.pilot.accounts[0].velocity == D("0.44")
    assert report.pilot.activities == 2  # P1's two calls on the first day


def test_unknown_pilot_ids_are_reported_and_an_unstarted_window_says_so(pilot_world):
    report = pilot_report(make_pilot(["p1", "ghost"]))
    assert report.missing == ("ghost",)
    # P1 alone: band 4,500 … 18,000 → C1, C2 and P2, P3 (outside this pilot); C3 at 36,000
    # is now too large.
    assert [r.account.external_id for r in report.comparison.accounts] == ["c1", "c2", "p2", "p3"]

    later = pilot_report(make_pilot(["p1"], start=dt.date(2026, 9, 1), end=dt.date(2026, 12, 31), name="Later"))
    assert not later.started
    assert later.pilot.n == 0 and later.listed == ("p1",)


def test_comparable_band_is_per_segment():
    def row(external_id, segment, size, in_pilot=False):
        return PilotAccount(0, external_id, external_id, segment, in_pilot, D(size), D(0), D(0), D(0), D(0), 0)

    rows = [
        row("p-mm", "mid-market", 1000, in_pilot=True),
        row("p-ent", "enterprise", 100000, in_pilot=True),
        row("mm-ok", "mid-market", 1500),
        row("mm-big", "mid-market", 50000),  # fits the enterprise band, not its own segment's
        row("ent-ok", "enterprise", 60000),
        row("smb", "smb", 1000),
        row("zero", "mid-market", 0),
    ]
    assert [r.external_id for r in comparable(rows)] == ["mm-ok", "ent-ok"]


def test_pilot_report_reads_in_a_fixed_number_of_queries(pilot_world, django_assert_num_queries):
    plan = make_pilot(["p1", "p2", "p3"])
    # The latest version, the latest usage day, every account of the segment at once.
    with django_assert_num_queries(3):
        pilot_report(plan)


def test_pilot_plans_lists_latest_versions(db):
    plan = make_pilot(["p1"])
    PlanVersion.objects.create(
        plan=plan,
        version=2,
        effective_from=dt.date(2026, 7, 1),
        parameters={"rate": "0.08", "accounts": ["p1"], "window": {"start": "2026-07-01", "end": "2026-12-31"}},
    )
    Plan.objects.create(name="Land", type=PlanType.LAND)
    [(listed, version)] = pilot_plans()
    assert listed == plan and version.version == 2
