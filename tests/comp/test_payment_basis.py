# ruff: noqa: F811 -- the engine tests' fixtures are imported by name and requested as arguments
"""Land plans paid on payment (``payment_basis: paid``) and clawing back on refunds
(``refund_clawback: true``), against hand-worked examples (the rules: docs/plans.md
"Paid on payment and refund clawbacks").

The deal is test_engine's: Avery lands Acme with a $240,000 commit on 2026-01-01, 10%
base rate, so $24,000 of commission: $12,000 at signature (it rests on the invoice billing
the contract's start, Jan 1) and $12,000 at day 90 (Apr 1, gated on burn ≥ 25%; it rests on
the invoice billing Apr 1). Invoices bill a quarter in advance: $60,000 (a quarter of the
commit) for Jan 1 – Mar 31, issued Jan 1.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal

import factory
import pytest
from django.test import Client

from accounts.models import BillingDocument, BillingKind, BillingStatus
from comp import whatif
from comp.engine import compute_targets, run_comp
from comp.models import LedgerLine, LineKind, PlanType, PlanVersion
from comp.outlook import AWAITS_PAYMENT, gate_outlook, pay_timeline
from comp.periods import add_months, month_start
from comp.plans import PlansRejected, describe, plan_yaml, plans_import
from comp.selectors import line_status
from revops.clock import yesterday_utc
from tests.comp.test_engine import (  # noqa: F401 - fixtures
    APR,
    FEB,
    JAN,
    LAND,
    MAR,
    MAY,
    D,
    acme,
    assign,
    avery,
    contract,
    expect,
    land_deal,
    line_of,
    make_plan,
    meter,
    own,
    run,
    run_twice,
    spend,
)

pytestmark = pytest.mark.django_db
JUN = D(2026, 6, 1)
TWELVE = Decimal("12000.00")


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


class BillingDocumentFactory(factory.django.DjangoModelFactory):
    """An invoice of the account (``kind``/``status`` to make a refund or credit note)."""

    class Meta:
        model = BillingDocument

    source = "stripe:test"
    external_id = factory.Sequence(lambda n: f"in_{n}")
    kind = BillingKind.INVOICE
    status = BillingStatus.OPEN
    amount = Decimal("60000.00")
    issued_at = factory.LazyFunction(lambda: at(JAN))


def invoice(account, external_id: str, first: dt.date, last: dt.date, *, issued: dt.date, paid=None, **kw):
    return BillingDocumentFactory(
        account=account,
        external_id=external_id,
        period_start=first,
        period_end=last,
        issued_at=at(issued),
        status=BillingStatus.PAID if paid else kw.pop("status", BillingStatus.OPEN),
        paid_at=at(paid) if paid else None,
        **kw,
    )


def refund(account, external_id: str, amount: str, *, issued: dt.date, of=None, kind=BillingKind.REFUND, **kw):
    return BillingDocumentFactory(
        account=account,
        external_id=external_id,
        kind=kind,
        status=BillingStatus.ISSUED,
        amount=Decimal(amount),
        issued_at=at(issued),
        invoice_external_id=of.external_id if of else "",
        **kw,
    )


def paid_plan(avery, acme, **options) -> None:
    assign(avery, make_plan(PlanType.LAND, {**LAND, **options}))
    own(acme, avery)


@pytest.fixture
def paid_deal(avery, acme):
    paid_plan(avery, acme, payment_basis="paid")
    return contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))


@pytest.fixture
def refund_deal(avery, acme):
    paid_plan(avery, acme, refund_clawback=True)
    return contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))


def targets(period: dt.date) -> list[tuple]:
    return sorted((t.person_id, t.key, t.kind, t.amount, t.home) for t in compute_targets(period).targets)


# --- The default: nothing changes --------------------------------------------------------------


def test_without_the_options_billing_documents_change_no_number(land_deal, acme, meter):
    # test_engine's first scenario: day-90 burn 30.42% ≥ 25% (Mar 3 – Apr 1 at $200/day).
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")
    months = [JAN, FEB, MAR, APR, MAY]
    without = [targets(m) for m in months]
    q1 = invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN)  # open for ever
    invoice(acme, "in_q2", APR, D(2026, 6, 30), issued=APR, status=BillingStatus.UNCOLLECTIBLE)
    refund(acme, "re_1", "30000", issued=FEB, of=q1)
    # The same targets every month, documents or not: the plan is paid as booked.
    assert [targets(m) for m in months] == without
    key = f"land:{land_deal.pk}"
    # …and the same ledger as test_engine's: $240,000 × 10% × 50% at signature, the rest at day 90.
    assert run_twice(JAN) == [(LineKind.COMMISSION, JAN, TWELVE, f"{key}:share0")]
    assert run_twice(FEB) == []
    assert run_twice(MAR) == []
    assert run_twice(APR) == [(LineKind.COMMISSION, APR, TWELVE, f"{key}:share1")]
    assert run_twice(MAY) == []


def test_paid_by_the_month_it_is_earned_pays_exactly_as_booked(land_deal, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")
    # Paid Jan 20 (the signature share's month) and Apr 15 (the day-90 share's month).
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 1, 20))
    invoice(acme, "in_q2", APR, D(2026, 6, 30), issued=APR, paid=D(2026, 4, 15))
    stored = PlanVersion.objects.get(plan__type=PlanType.LAND)
    # The same plan paid on payment, as a what-if computes it (versions are immutable).
    on_payment = PlanVersion(
        plan=stored.plan, version=2, effective_from=stored.effective_from, parameters={**LAND, "payment_basis": "paid"}
    )

    def keys(period, **kwargs):
        return sorted((t.key, t.kind, t.amount, t.home) for t in compute_targets(period, **kwargs).targets)

    # The same keys, kinds, amounts and months as booked: $12,000 in January, $12,000 in April.
    for month in (JAN, APR):
        assert keys(month, overrides={stored.plan_id: [on_payment]}) == keys(month)
    assert [t[:3] for t in keys(APR)] == [
        (f"land:{land_deal.pk}:share0", LineKind.COMMISSION, TWELVE),
        (f"land:{land_deal.pk}:share1", LineKind.COMMISSION, TWELVE),
    ]


def test_a_whatif_replays_the_booked_ledger_as_paid_on_payment(land_deal, avery, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")  # day 90 clears
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 3, 10))
    invoice(acme, "in_q2", APR, D(2026, 6, 30), issued=APR, paid=D(2026, 4, 15))
    for month in (JAN, FEB, MAR, APR):
        run(month)
    plan = PlanVersion.objects.get(plan__type=PlanType.LAND).plan
    draft = [whatif.DraftVersion(plan, JAN, {**LAND, "payment_basis": "paid"})]
    result = whatif.replay(versions=draft, months=[JAN, FEB, MAR, APR])

    def by_key(lines):
        return sorted((line.period, line.kind, line.key, line.amount) for line in lines)

    key = f"land:{land_deal.pk}"
    assert by_key(result.actual) == [
        (JAN, LineKind.COMMISSION, f"{key}:share0", TWELVE),
        (APR, LineKind.COMMISSION, f"{key}:share1", TWELVE),
    ]
    # Paid on payment: January's share waits for in_q1 (paid Mar 10) and is paid in March;
    # April's is paid in April (in_q2 paid Apr 15). The ledger is untouched.
    assert by_key(result.draft) == [
        (JAN, LineKind.HOLD, f"{key}:share0:awaiting_payment", TWELVE),
        (MAR, LineKind.HOLD, f"{key}:share0:awaiting_payment", -TWELVE),
        (MAR, LineKind.RELEASE, f"{key}:share0:on_payment", TWELVE),
        (APR, LineKind.COMMISSION, f"{key}:share1", TWELVE),
    ]
    summary = whatif.summarize(result)
    assert (summary["totals"]["actual"], summary["totals"]["draft"]) == ("24000.00", "24000.00")
    months = {row["month"]: row["difference"] for row in summary["person_months"]}
    assert (months["2026-01"], months["2026-03"]) == ("-12000.00", "12000.00")
    assert LedgerLine.objects.filter(kind=LineKind.HOLD).count() == 0


# --- Paid on payment: held, then released ------------------------------------------------------------


def test_a_share_waits_for_its_invoice_and_is_released_in_the_month_it_is_paid(paid_deal, avery, acme, meter):
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")  # day 90 clears: 30.42% ≥ 25%
    q1 = invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN)
    q2 = invoice(acme, "in_q2", APR, D(2026, 6, 30), issued=APR)
    key = f"land:{paid_deal.pk}"

    # January: the $12,000 signature share is earned; in_q1 (Jan 1 – Mar 31) is open: held.
    assert run_twice(JAN) == [(LineKind.HOLD, JAN, TWELVE, f"{key}:share0:awaiting_payment")]
    hold = line_of(f"{key}:share0:awaiting_payment")
    assert "waits for payment of invoice in_q1 ($60,000.00, open since 2026-01-01)" in hold.explanation
    assert hold.inputs["releases_if"] == "invoice in_q1 ($60,000.00, open since 2026-01-01) is paid"
    assert line_status(hold, approved=False) == "held"
    assert run_twice(FEB) == []  # still open

    # in_q1 is paid on Mar 10: the March run undoes the hold and pays the share.
    BillingDocument.objects.filter(pk=q1.pk).update(status=BillingStatus.PAID, paid_at=at(D(2026, 3, 10)))
    assert run_twice(MAR) == expect(
        (LineKind.HOLD, MAR, -TWELVE, f"{key}:share0:awaiting_payment"),
        (LineKind.RELEASE, MAR, TWELVE, f"{key}:share0:on_payment"),
    )
    release = line_of(f"{key}:share0:on_payment")
    assert release.inputs["paid_on"] == "2026-03-10"
    assert release.inputs["earned_in"] == "2026-01"
    assert "invoice in_q1 ($60,000.00, paid 2026-03-10)" in release.explanation
    assert line_status(line_of(f"{key}:share0:awaiting_payment", period=MAR), approved=False) == "released"

    # Day 90 (Apr 1) clears the burn floor; its share rests on in_q2 (Apr 1 – Jun 30), open: held.
    assert run_twice(APR) == [(LineKind.HOLD, APR, TWELVE, f"{key}:share1:awaiting_payment")]
    assert line_of(f"{key}:share1:awaiting_payment").inputs["burn_at_checkpoint"] == "0.3042"
    assert run_twice(MAY) == []
    BillingDocument.objects.filter(pk=q2.pk).update(status=BillingStatus.PAID, paid_at=at(D(2026, 6, 5)))
    assert run_twice(JUN) == expect(
        (LineKind.HOLD, JUN, -TWELVE, f"{key}:share1:awaiting_payment"),
        (LineKind.RELEASE, JUN, TWELVE, f"{key}:share1:on_payment"),
    )
    # In all: $24,000 paid, nothing held, no line ever edited (the ledger only grew).
    lines = LedgerLine.objects.filter(person=avery)
    assert sum(line.amount for line in lines if line.kind != LineKind.HOLD) == Decimal("24000.00")
    assert sum(line.amount for line in lines if line.kind == LineKind.HOLD) == 0


def test_a_payment_made_after_the_run_month_is_not_seen_by_that_month(paid_deal, acme):
    # Paid on Feb 3: a (re-)computation of January still sees in_q1 open.
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 2, 3))
    key = f"land:{paid_deal.pk}:share0"
    assert [t[1:3] for t in targets(JAN)] == [(f"{key}:awaiting_payment", LineKind.HOLD)]
    assert run(JAN) == [(LineKind.HOLD, JAN, TWELVE, f"{key}:awaiting_payment")]
    assert run(FEB) == expect(
        (LineKind.HOLD, FEB, -TWELVE, f"{key}:awaiting_payment"),
        (LineKind.RELEASE, FEB, TWELVE, f"{key}:on_payment"),
    )


def test_no_invoice_yet_holds_the_share_saying_so(paid_deal, acme):
    key = f"land:{paid_deal.pk}:share0:awaiting_payment"
    assert run(JAN) == [(LineKind.HOLD, JAN, TWELVE, key)]
    assert "the invoice billing 2026-01-01 (not issued yet)" in line_of(key).explanation


def test_a_void_invoice_waits_for_its_replacement_and_an_uncollectible_one_forfeits(paid_deal, acme):
    key = f"land:{paid_deal.pk}:share0"
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, status=BillingStatus.VOID)
    # Void: as if never issued; the share waits for the invoice that replaces it.
    assert run(JAN) == [(LineKind.HOLD, JAN, TWELVE, f"{key}:awaiting_payment")]
    assert "(not issued yet)" in line_of(f"{key}:awaiting_payment").explanation
    # The replacement, issued Feb 2, is marked uncollectible in March: forfeited.
    replacement = invoice(acme, "in_q1b", JAN, D(2026, 3, 31), issued=D(2026, 2, 2))
    assert run(FEB) == []  # open: still held
    BillingDocument.objects.filter(pk=replacement.pk).update(status=BillingStatus.UNCOLLECTIBLE)
    assert run_twice(MAR) == [(LineKind.HOLD, MAR, -TWELVE, f"{key}:awaiting_payment")]
    forfeit = line_of(f"{key}:awaiting_payment", period=MAR)
    assert forfeit.inputs["outcome"] == "forfeited"
    assert line_status(forfeit, approved=False) == "forfeited"
    assert "uncollectible: forfeited" in forfeit.explanation
    assert not LedgerLine.objects.filter(kind=LineKind.RELEASE).exists()


# --- Refund clawbacks -----------------------------------------------------------------------------


def test_partial_refunds_claw_back_their_share_and_never_more_than_was_paid(refund_deal, avery, acme):
    # A $70,000 invoice for Q1, paid; the $12,000 signature share rests on it.
    q1 = invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 1, 5), amount=Decimal("70000"))
    key = f"land:{refund_deal.pk}"
    assert run(JAN) == [(LineKind.COMMISSION, JAN, TWELVE, f"{key}:share0")]
    first = refund(acme, "re_1", "10000", issued=D(2026, 2, 10), of=q1)
    # $10,000 ÷ $70,000 × $12,000 = $1,714.2857… → −$1,714.29 (half up, on the running total).
    assert run_twice(FEB) == [(LineKind.CLAWBACK, FEB, Decimal("-1714.29"), f"{key}:refund:{first.pk}")]
    second = refund(acme, "re_2", "10000", issued=D(2026, 3, 2), of=q1)
    # In all $20,000 ÷ $70,000 × $12,000 = $3,428.5714… → $3,428.57; minus $1,714.29 before:
    # −$1,714.28 (the two lines add up to the rounded total, not to twice the rounded half).
    third = refund(acme, "re_3", "60000", issued=D(2026, 3, 20), of=q1)
    # re_3 would take $80,000 of $70,000: capped at the $12,000 paid, $12,000 − $3,428.57 = $8,571.43.
    assert run_twice(MAR) == expect(
        (LineKind.CLAWBACK, MAR, Decimal("-1714.28"), f"{key}:refund:{second.pk}"),
        (LineKind.CLAWBACK, MAR, Decimal("-8571.43"), f"{key}:refund:{third.pk}"),
    )
    assert sum(line.amount for line in LedgerLine.objects.filter(person=avery)) == 0
    line = line_of(f"{key}:refund:{second.pk}")
    assert line.inputs["refunded_so_far"] == "20000.00"
    assert line.inputs["clawed_back_so_far"] == "3428.57"
    assert (
        "refund re_2 ($10,000.00, 2026-03-02) on invoice in_q1 ($70,000.00). $20,000.00 of the invoice is "
        "refunded so far, so 28.6% of the $12,000.00 commission paid on it is taken back: $1,714.28 with this "
        "line, $3,428.57 in all." in line.explanation
    )


def test_a_credit_note_without_an_invoice_claws_back_on_the_invoice_billing_its_day(refund_deal, acme):
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 1, 5))
    key = f"land:{refund_deal.pk}"
    run(JAN)
    # cn_1 names no invoice; issued Feb 15, a day in_q1 bills: $6,000 ÷ $60,000 × $12,000 = $1,200.
    note = refund(acme, "cn_1", "6000", issued=D(2026, 2, 15), kind=BillingKind.CREDIT_NOTE)
    # cn_2 names no invoice and bills Apr 20, which no invoice of Acme bills: nothing to claw back.
    refund(acme, "cn_2", "6000", issued=D(2026, 2, 16), kind=BillingKind.CREDIT_NOTE, period_start=D(2026, 4, 20))
    assert run_twice(FEB) == [(LineKind.CLAWBACK, FEB, Decimal("-1200.00"), f"{key}:refund:{note.pk}")]
    assert (
        "it names no invoice; attributed by the day it bills, 2026-02-15"
        in line_of(f"{key}:refund:{note.pk}").explanation
    )


def test_a_voided_credit_note_gives_back_what_it_clawed(refund_deal, acme):
    q1 = invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 1, 5))
    key = f"land:{refund_deal.pk}"
    run(JAN)
    note = refund(acme, "cn_1", "15000", issued=D(2026, 2, 1), of=q1, kind=BillingKind.CREDIT_NOTE)
    # $15,000 ÷ $60,000 × $12,000 = $3,000.
    assert run(FEB) == [(LineKind.CLAWBACK, FEB, Decimal("-3000.00"), f"{key}:refund:{note.pk}")]
    BillingDocument.objects.filter(pk=note.pk).update(status=BillingStatus.VOID)
    # Reversed in the next run as any line no longer owed is: a +$3,000 true-up, the February
    # line untouched.
    assert run(MAR) == [(LineKind.TRUE_UP, MAR, Decimal("3000.00"), f"{key}:refund:{note.pk}")]
    assert line_of(f"{key}:refund:{note.pk}", period=FEB).amount == Decimal("-3000.00")


def test_a_refund_of_an_invoice_paid_on_payment_claws_back_what_was_released(avery, acme):
    paid_plan(avery, acme, payment_basis="paid", refund_clawback=True)
    deal = contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))
    q1 = invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 2, 10))
    key = f"land:{deal.pk}"
    # A credit note in January, before the invoice is paid: nothing was paid yet, nothing to take.
    note = refund(acme, "cn_1", "30000", issued=D(2026, 1, 20), of=q1, kind=BillingKind.CREDIT_NOTE)
    assert run(JAN) == [(LineKind.HOLD, JAN, TWELVE, f"{key}:share0:awaiting_payment")]
    # Paid Feb 10: released, and the credit note now takes $30,000 ÷ $60,000 × $12,000 = $6,000,
    # in the run that releases (its own month, January, was computed without it).
    assert run_twice(FEB) == expect(
        (LineKind.HOLD, FEB, -TWELVE, f"{key}:share0:awaiting_payment"),
        (LineKind.CLAWBACK, FEB, Decimal("-6000.00"), f"{key}:refund:{note.pk}"),
        (LineKind.RELEASE, FEB, TWELVE, f"{key}:share0:on_payment"),
    )


def test_the_burn_clawback_never_takes_back_what_a_refund_already_took(avery, acme, meter):
    paid_plan(avery, acme, refund_clawback=True)
    deal = contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))
    spend(acme, meter, D(2026, 3, 3), D(2026, 4, 1), "200")  # day 90 clears; no usage at day 365
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 1, 3))
    q2 = invoice(acme, "in_q2", APR, D(2026, 6, 30), issued=APR, paid=D(2026, 4, 3))
    key = f"land:{deal.pk}"
    run(JAN)
    run(APR)
    # re_1 refunds half of in_q2: $30,000 ÷ $60,000 × the $12,000 day-90 share = $6,000 back in May.
    half = refund(acme, "re_1", "30000", issued=D(2026, 5, 4), of=q2)
    assert run(MAY) == [(LineKind.CLAWBACK, MAY, Decimal("-6000.00"), f"{key}:refund:{half.pk}")]
    # Day 365 (2027-01-01), burn 0% < 40%: the gated share is clawed back, less the $6,000
    # the refund took of it already: −$6,000. The $12,000 signature share stays paid.
    assert run(D(2027, 1, 1)) == [(LineKind.CLAWBACK, D(2027, 1, 1), Decimal("-6000.00"), f"{key}:clawback")]
    assert line_of(f"{key}:clawback").inputs["gated_paid"] == "6000.00"
    assert sum(line.amount for line in LedgerLine.objects.filter(person=avery)) == TWELVE


# --- The plan import -------------------------------------------------------------------------------


def land_doc(**extra: str) -> bytes:
    lines = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    return (
        "plans:\n"
        "  - name: Land FY26\n"
        "    type: land\n"
        "    effective_from: 2026-01-01\n"
        '    base_rate: "0.10"\n'
        '    schedule: [{at_day: 0, share: "0.5"}, {at_day: 90, share: "0.5", burn_floor: "0.25"}]\n' + lines
    ).encode()


def problems(data: bytes) -> list[str]:
    with pytest.raises(PlansRejected) as caught:
        plans_import(data=data, filename="plans.yaml")
    report = caught.value.report
    return [f"{e['path']}: {e['reason']} (line {e['line']})" for e in report.errors]


def test_the_import_refuses_bad_values_with_the_field_line_and_reason(db):
    assert problems(land_doc(payment_basis="cash")) == [
        'plans[0].payment_basis: "cash" — must be one of booked, paid (line 7)'
    ]
    assert problems(land_doc(refund_clawback='"yes"')) == [
        'plans[0].refund_clawback: "yes" — must be true or false (line 7)'
    ]
    expand = b'plans:\n  - {name: Expand, type: expand, effective_from: 2026-01-01, rate: "0.1", payment_basis: paid}\n'
    assert problems(expand) == [
        "plans[0].payment_basis: applies to land plans only; an expand plan is always paid as booked: expansion "
        "commission is earned on metered consumption over a quarter to date, pooled over the whole book and "
        "settled 92 days after the quarter, so no one invoice stands behind it (line 2)"
    ]
    draw = (
        b"plans:\n  - name: Draw\n    type: draw\n    effective_from: 2026-01-01\n"
        b'    monthly_amount: "3000"\n    months: 6\n    recoverable: true\n    refund_clawback: true\n'
    )
    assert problems(draw) == [
        "plans[0].refund_clawback: applies to land plans only; a draw plan is always paid as booked: a draw is a "
        "flat advance, paid whatever is invoiced (line 8)"
    ]
    assert not PlanVersion.objects.exists()


def test_the_options_are_stored_only_when_on_so_old_documents_stay_the_same_version(db):
    plans_import(data=land_doc(), filename="plans.yaml")
    stored = PlanVersion.objects.get().parameters
    assert "payment_basis" not in stored and "refund_clawback" not in stored
    # Writing the defaults out is the same version: skipped, not refused.
    report = plans_import(data=land_doc(payment_basis="booked", refund_clawback="false"), filename="plans.yaml")
    assert report.summary["versions_unchanged"] == 1
    # On: stored, described, exported, and the export re-imports to no change.
    on = land_doc(payment_basis="paid", refund_clawback="true").replace(b"Land FY26", b"Land on payment")
    plans_import(data=on, filename="plans.yaml")
    version = PlanVersion.objects.get(plan__name="Land on payment")
    assert (version.parameters["payment_basis"], version.parameters["refund_clawback"]) == ("paid", True)
    assert "each share paid once the invoice billing its day is paid" in describe(PlanType.LAND, version.parameters)
    exported = plan_yaml(version.plan)
    assert "payment_basis: paid" in exported and "refund_clawback: true" in exported
    again = plans_import(data=exported.encode(), filename="plan.yaml")
    assert again.summary["versions_created"] == 0


# --- The statement page and the pay outlook --------------------------------------------------------


def test_the_statement_page_says_why_a_line_is_held_and_what_a_refund_took(avery, acme):
    paid_plan(avery, acme, payment_basis="paid", refund_clawback=True)
    deal = contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))
    q1 = invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN)
    run(JAN)
    BillingDocument.objects.filter(pk=q1.pk).update(status=BillingStatus.PAID, paid_at=at(D(2026, 2, 10)))
    refund(acme, "re_1", "15000", issued=D(2026, 2, 20), of=q1)
    run(FEB)
    client = Client()
    client.force_login(avery)
    january = html.unescape(client.get(f"/comp/statements/{avery.pk}/2026-01/").content.decode())
    assert "Released if invoice in_q1 ($60,000.00, open since 2026-01-01) is paid" in january
    february = html.unescape(client.get(f"/comp/statements/{avery.pk}/2026-02/").content.decode())
    assert "None" not in february
    clawback = line_of(f"land:{deal.pk}:refund:{BillingDocument.objects.get(external_id='re_1').pk}")
    assert clawback.amount == Decimal("-3000.00")  # $15,000 ÷ $60,000 × $12,000
    page = html.unescape(client.get(f"/comp/statements/lines/{clawback.pk}/").content.decode())
    assert "Refund clawback on Acme: refund re_1 ($15,000.00, 2026-02-20) on invoice in_q1 ($60,000.00)" in page
    release = line_of(f"land:{deal.pk}:share0:on_payment")
    page = html.unescape(client.get(f"/comp/statements/lines/{release.pk}/").content.decode())
    assert "held for payment: invoice in_q1 ($60,000.00, paid 2026-02-10), so it is paid now" in page


def test_the_pay_outlook_says_which_invoice_held_money_waits_for(paid_deal, avery, acme):
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN)
    run(JAN)
    gates = [g for g in gate_outlook(person=avery, as_of=D(2026, 2, 15)) if g.status == AWAITS_PAYMENT]
    assert [(g.label, g.at_stake, g.needs) for g in gates] == [
        ("Signature share — on payment", TWELVE, "invoice in_q1 ($60,000.00, open since 2026-01-01) paid")
    ]
    assert gates[0].says == (
        "Earned in January 2026; waits for payment of invoice in_q1 ($60,000.00, open since 2026-01-01). "
        "$12,000.00 is paid on the statement of the month it is paid."
    )
    february = pay_timeline(person=avery, as_of=D(2026, 2, 15)).months[0]
    assert [(g.label, g.status_words) for g in february.decisions] == [
        ("Signature share — on payment", "waits for payment")
    ]


def test_the_pay_outlook_page_shows_the_invoice_a_share_waits_for(avery, acme, meter, client):
    as_of = yesterday_utc()
    signed = month_start(add_months(month_start(as_of), -1))
    paid_plan(avery, acme, payment_basis="paid")
    contract(acme, "240000", signed=signed, end=signed + dt.timedelta(days=729))
    invoice(acme, "in_up", signed, signed + dt.timedelta(days=89), issued=signed)
    run_comp(period=signed)
    client.force_login(avery)
    response = client.get(f"/comp/statements/{avery.pk}/estimator/")
    text = " ".join(html.unescape(response.content.decode()).split())
    assert response.status_code == 200
    assert f"waits for payment of invoice in_up ($60,000.00, open since {signed})" in text
    assert "None" not in text


def test_the_pay_outlook_of_a_gated_share_paid_on_payment(paid_deal, avery, acme, meter):
    # Feb 14 – Apr 1 at $200/day: 30.42% on Mar 15 and at day 90 (Apr 1), over the 25% floor.
    spend(acme, meter, D(2026, 2, 14), D(2026, 4, 1), "200")
    invoice(acme, "in_q1", JAN, D(2026, 3, 31), issued=JAN, paid=D(2026, 1, 20))
    invoice(acme, "in_q2", APR, D(2026, 6, 30), issued=APR)
    run(JAN)
    # Mar 15: day 90 ahead clears at today's burn, but in_q2 will still be open: earned, not paid.
    ahead = {g.label: g for g in gate_outlook(person=avery, as_of=D(2026, 3, 15))}
    assert (ahead["Day-90 share"].status, ahead["Day-90 share"].amount) == ("pays", Decimal(0))
    assert "paid once the invoice billing that day is paid" in ahead["Day-90 share"].says
    assert ahead["Day-90 share — on payment"].says == (
        "Earned from April 2026; waits for payment of invoice in_q2 ($60,000.00, open since 2026-04-01). "
        "$12,000.00 is paid on the statement of the month it is paid."
    )
    # Apr 15, after the April run: cleared on Apr 1, waiting for in_q2.
    run(APR)
    decided = {g.label: g for g in gate_outlook(person=avery, as_of=D(2026, 4, 15))}
    assert (decided["Day-90 share"].status, decided["Day-90 share"].amount) == ("paid", Decimal(0))
    assert decided["Day-90 share"].says == (
        "Cleared on 2026-04-01 (burn 30.4%); $12,000.00 waits for payment of invoice in_q2 ($60,000.00, "
        "open since 2026-04-01)."
    )
    assert decided["Day-90 share — on payment"].status == AWAITS_PAYMENT
