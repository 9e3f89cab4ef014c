"""The demo's comp: plans sized to the books, a year of monthly runs, closed months approved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Min, Sum

from accounts.models import Account, Ownership
from comp.models import PAYABLE_KINDS, Assignment, CompRun, LedgerLine, PlanType, PlanVersion, Statement
from demo.comp import approval_day, comp_document, seed_comp
from demo.company import load_company, plan_company
from demo.people import seed_people
from revops.models import Role, User

SMALL_ARGS = ["--seed", "7", "--accounts", "30", "--months", "4", "--as-of", "2026-05-01"]
# The full-size demo as `make run` loads it, on a day late in the year.
YEAR = {"seed": 42, "accounts": 400, "months": 18, "as_of": dt.date(2026, 12, 3)}

pytestmark = pytest.mark.django_db


def ytd(email: str, year: int) -> Decimal:
    return LedgerLine.objects.filter(person__email=email, kind__in=PAYABLE_KINDS, period__year=year).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)


def test_finance_approves_each_closed_month_early_in_the_month_after_and_the_current_one_stays_open():
    call_command("seed_demo", *SMALL_ARGS)

    finance = User.objects.get(email="finance@example.com")
    approved = Statement.objects.filter(status="approved")
    assert sorted(set(approved.values_list("period", flat=True))) == [dt.date(2026, m, 1) for m in (1, 2, 3, 4)]
    assert set(approved.values_list("approved_by", flat=True)) == {finance.pk}
    # On the 5th of the month after at 15:00 UTC; April's on May 1, the demo's today.
    at = {s.period: s.approved_at for s in approved}
    assert at == {
        dt.date(2026, 1, 1): dt.datetime(2026, 2, 5, 15, tzinfo=dt.UTC),
        dt.date(2026, 2, 1): dt.datetime(2026, 3, 5, 15, tzinfo=dt.UTC),
        dt.date(2026, 3, 1): dt.datetime(2026, 4, 5, 15, tzinfo=dt.UTC),
        dt.date(2026, 4, 1): dt.datetime(2026, 5, 1, 15, tzinfo=dt.UTC),
    }
    # Everyone on a plan that month has an approved statement, with its totals frozen.
    sellers = set(Assignment.objects.values_list("person_id", flat=True))
    assert set(approved.filter(period=dt.date(2026, 4, 1)).values_list("person_id", flat=True)) == sellers
    assert all(s.approved_totals for s in approved)
    assert not Statement.objects.filter(period=dt.date(2026, 5, 1), status="approved").exists()
    # Each closed month was run on the 1st of the month after, before its approval.
    runs = dict(CompRun.objects.values_list("period", "started_at"))
    assert runs[dt.date(2026, 1, 1)] == dt.datetime(2026, 2, 1, 6, tzinfo=dt.UTC)
    assert set(runs) == {dt.date(2026, m, 1) for m in (1, 2, 3, 4, 5)}


def test_approval_day_is_the_fifth_of_the_month_after_unless_that_is_still_to_come():
    assert approval_day(dt.date(2026, 3, 1), dt.date(2026, 12, 3)) == dt.date(2026, 4, 5)
    assert approval_day(dt.date(2026, 11, 1), dt.date(2026, 12, 3)) == dt.date(2026, 12, 2)
    assert approval_day(dt.date(2026, 11, 1), dt.date(2026, 12, 1)) == dt.date(2026, 12, 1)


def test_every_seller_with_a_book_is_on_the_plan_for_their_role():
    call_command("seed_demo", *SMALL_ARGS)

    document = comp_document(dt.date(2026, 5, 1))
    plans = {(a["email"], a["plan"]) for a in document["assignments"]}
    for role, plan in (("land_ae", "Land FY26"), ("expand_ae", "Expand FY26"), ("csm", "CS NRR FY26")):
        owners = set(Ownership.objects.filter(role=role).values_list("person__email", flat=True))
        assert owners and {email for email, name in plans if name == plan} == owners
    # The new hire is ramped (the default relief) and on the bridge draw for six months.
    riley = User.objects.get(email="riley.chen@example.com")
    land = Assignment.objects.get(person=riley, plan__name="Land FY26")
    assert land.start_on == riley.started_on and land.ramp_relief == ["0.25", "0.5", "0.75", "1"]
    assert Assignment.objects.filter(person=riley, plan__type=PlanType.DRAW).exists()


@pytest.mark.slow
def test_a_year_of_the_full_demo_pays_sellers_like_real_plans_and_pilots_on_mid_market_accounts():
    seed_people()
    load_company(plan_company(**YEAR))
    seed_comp(YEAR["as_of"])

    year = YEAR["as_of"].year
    sellers = User.objects.filter(role=Role.AE, comp_assignments__plan__type__in=[PlanType.LAND, PlanType.EXPAND])
    pay = {u.email: ytd(u.email, year) for u in sellers.distinct()}
    assert len(pay) == 16
    # Tens to low hundreds of thousands of dollars, as real plans pay, not millions.
    assert all(Decimal(5_000) < amount < Decimal(350_000) for amount in pay.values()), pay
    assert Decimal(100_000) < pay["ae@example.com"] < Decimal(300_000)
    # The documented AE is paid on both plans: new logos and expansion.
    kinds = set(
        LedgerLine.objects.filter(person__email="ae@example.com", kind__in=PAYABLE_KINDS).values_list(
            "plan_version__plan__type", flat=True
        )
    )
    assert {PlanType.LAND, PlanType.EXPAND, PlanType.SPIFF} <= kinds
    # The pilot: 18 mid-market customers at least six months in when it started, paid at its end.
    version = PlanVersion.objects.get(plan__type=PlanType.PILOT)
    accounts = Account.objects.filter(external_id__in=version.parameters["accounts"])
    assert len(version.parameters["accounts"]) == accounts.count() == 18
    assert set(accounts.values_list("segment", flat=True)) == {"mid-market"}
    assert accounts.annotate(first=Min("contracts__signed_on")).filter(first__gt=dt.date(2025, 7, 5)).count() == 0
    assert version.parameters["window"] == {"start": "2026-01-01", "end": "2026-06-30"}
    assert version.plan.assignments.get().person.email == "drew.okafor@example.com"
    bonus = LedgerLine.objects.get(plan_version=version, kind="bonus")
    assert bonus.period == dt.date(2026, 6, 1) and bonus.amount > Decimal(10_000)
    # Eleven closed months approved, December open.
    approved = set(Statement.objects.filter(status="approved").values_list("period", flat=True))
    assert approved == {dt.date(year, m, 1) for m in range(1, 12)}
