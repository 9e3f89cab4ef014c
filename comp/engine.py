"""The comp run: what every assignment has earned as of a month's last day.

How a run works (``run_comp``):

1. ``compute_targets`` works out, for every *key* (a deal's signature share, a gate's
   hold, a quarter's expansion commission, a draw month…), the total the ledger should
   hold for it as of the month's last day, with the inputs and formula behind it.
2. The ledger already holds lines for many of those keys. The run appends only the
   differences, so re-running a month adds nothing, and a number that changed since
   (late usage, a corrected contract) becomes a ``true_up`` line in the month being run.
3. A difference whose month finance has already approved lands in the next open month as
   an ``adjustment``; approved statements never change.

Money is exact ``Decimal`` everywhere and rounded to cents once, in ``cents()``, when a
target is made; differences of rounded targets are exact. Runs only move forward: a
month earlier than the newest one run is already accounted for and is left alone.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import BillingDocument, BillingKind, BillingStatus, Contract, OwnerRole, Ownership
from comp.models import (
    Assignment,
    Attainment,
    CompRun,
    LedgerLine,
    LineKind,
    PlanType,
    PlanVersion,
)
from comp.periods import add_months, approved_periods, month_end, month_start, open_period, quarter_start

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
DEFAULT_RAMP = [Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("1")]
# pg_advisory_xact_lock key: two runs at once produce one result.
COMP_LOCK = 0x636F6D70_72756E00
# Quota periods that closed more than this many days before the run's last day are
# settled: their expansion commission and CS bonus are not recomputed (late usage older
# than that is not re-credited, as in Xactly's prior-period window) and stay as recorded.
SETTLE_AFTER_DAYS = 92
EARNING_KINDS = frozenset({LineKind.COMMISSION, LineKind.ACCELERATOR, LineKind.RELEASE, LineKind.SPIFF, LineKind.BONUS})


def cents(value: Decimal) -> Decimal:
    """The one place money is rounded: half up, to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _d(value) -> Decimal:
    return Decimal(str(value))


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


@dataclass
class Target:
    """What the ledger should hold for one key, as of the run's last day."""

    person_id: int
    key: str
    kind: str
    amount: Decimal
    home: dt.date  # the month the amount belongs to
    plan_version_id: int | None = None
    account_id: int | None = None
    inputs: dict = field(default_factory=dict)
    explanation: str = ""

    def __post_init__(self) -> None:
        self.amount = cents(self.amount)


# --- Loading what a run reads ------------------------------------------------------------


class Owners:
    """Effective-dated owners by account and role, in memory for one run."""

    def __init__(self) -> None:
        self.periods: dict[tuple[int, str], list[tuple[dt.date, dt.date | None, int]]] = defaultdict(list)
        for account_id, role, start, end, person_id in Ownership.objects.values_list(
            "account_id", "role", "start_on", "end_on", "person_id"
        ):
            self.periods[(account_id, role)].append((start, end, person_id))

    def on(self, account_id: int, role: str, day: dt.date) -> int | None:
        for start, end, person_id in self.periods.get((account_id, role), ()):
            if start <= day and (end is None or day <= end):
                return person_id
        return None


def _version_on(versions: list[PlanVersion], day: dt.date) -> PlanVersion | None:
    """The plan version in effect on ``day`` (versions sorted by effective_from)."""
    current = None
    for version in versions:
        if version.effective_from <= day:
            current = version
    return current


def _quota_period(assignment: Assignment, day: dt.date) -> tuple[dt.date, dt.date]:
    if assignment.quota_period == "month":
        start = month_start(day)
        return start, month_end(start)
    if assignment.quota_period == "year":
        start = dt.date(day.year, 1, 1)
        return start, dt.date(day.year, 12, 31)
    start = quarter_start(day)
    return start, month_end(add_months(start, 2))


def ramp_share(assignment: Assignment, started_on: dt.date | None, period_start: dt.date) -> Decimal:
    """Share of quota in force for a quota period starting ``period_start``: by quarter of
    tenure (0–3 months in: the first entry, 3–6: the second…); 100% after the list."""
    relief = [_d(v) for v in assignment.ramp_relief] or DEFAULT_RAMP
    if started_on is None or period_start < started_on:
        return relief[0] if started_on is not None else ONE
    months = (period_start.year - started_on.year) * 12 + period_start.month - started_on.month
    index = months // 3
    return relief[index] if index < len(relief) else ONE


def marginal_accelerator(
    *, before: Decimal, amount: Decimal, quota: Decimal, rate: Decimal, tiers: list[dict]
) -> tuple[Decimal, list[dict]]:
    """The extra above base rate for the part of ``amount`` credited past each threshold.

    Credit runs from ``before`` to ``before + amount``; tier i pays ``rate × (m_i − m_{i−1})``
    on the part above ``threshold_i × quota`` (only that part: marginal, not retroactive).
    """
    if quota <= 0 or amount <= 0:
        return ZERO, []
    after = before + amount
    extra, parts, previous = ZERO, [], ONE
    for tier in tiers:
        threshold = _d(tier["above_attainment"]) * quota
        multiplier = _d(tier["multiplier"])
        above = max(ZERO, after - max(before, threshold))
        if above > 0:
            extra += rate * (multiplier - previous) * above
            parts.append({"above": str(threshold), "credit_above": str(above), "multiplier": str(multiplier)})
        previous = multiplier
    return extra, parts


def tier_reached(attainment: Decimal | None, tiers: list[dict]) -> Decimal:
    multiplier = ONE
    for tier in tiers:
        if attainment is not None and attainment > _d(tier["above_attainment"]):
            multiplier = _d(tier["multiplier"])
    return multiplier


# --- The run's state ---------------------------------------------------------------------


class Run:
    """Everything one computation reads, loaded once (a constant number of queries)."""

    def __init__(
        self,
        period: dt.date,
        through: dt.date | None = None,
        *,
        overrides: dict[int, list[PlanVersion]] | None = None,
        memo: dict | None = None,
    ) -> None:
        """``overrides`` replaces the stored versions of the plans it names (plan id → versions
        sorted by effective_from): what a what-if (``comp.whatif``) computes under. ``memo``
        keeps the reads that depend on the data alone (burn on a day, a window's expansion
        credit, a book's retention inputs at a quarter end); a what-if shares one between
        the months it replays, a run has its own."""
        from revops.models import User

        self.period = period
        # A month still running is computed through its last complete day, not its end:
        # a checkpoint next week must not be judged on usage that has not happened yet.
        self.as_of = min(month_end(period), through) if through else month_end(period)
        self.assignments = list(
            Assignment.objects.filter(start_on__lte=self.as_of).select_related("plan", "person").order_by("pk")
        )
        versions: dict[int, list[PlanVersion]] = defaultdict(list)
        for version in PlanVersion.objects.filter(plan_id__in={a.plan_id for a in self.assignments}).order_by(
            "effective_from"
        ):
            versions[version.plan_id].append(version)
        if overrides is not None:
            versions.update(overrides)
        self.versions = versions
        self.started_on = dict(User.objects.values_list("pk", "started_on"))
        self.owners = Owners()
        self.contracts = list(Contract.objects.filter(signed_on__lte=self.as_of).select_related("account"))
        self.contract_by_id = {c.pk: c for c in self.contracts}
        self.targets: list[Target] = []
        self.attainments: list[Attainment] = []
        # Key prefixes of settled quota periods: neither recomputed nor reversed.
        self.settled: list[str] = []
        self.memo: dict = {} if memo is None else memo
        self._burn: dict = self.memo.setdefault("burn", {})
        self._billing: Billing | None = None

    def version(self, assignment: Assignment, day: dt.date) -> PlanVersion | None:
        return _version_on(self.versions.get(assignment.plan_id, []), day)

    def settled_period(self, end: dt.date) -> bool:
        return end < self.as_of - dt.timedelta(days=SETTLE_AFTER_DAYS)

    def covers(self, assignment: Assignment, day: dt.date) -> bool:
        return assignment.start_on <= day and (assignment.end_on is None or day <= assignment.end_on)

    def burn(self, points: Iterable[tuple[int, dt.date]]) -> None:
        from usage.signals.metrics import burn_at

        missing = [p for p in points if p not in self._burn]
        self._burn.update(burn_at(missing))

    def burn_on(self, account_id: int, day: dt.date):
        return self._burn[(account_id, day)]

    def add(self, target: Target) -> None:
        self.targets.append(target)

    @property
    def billing(self) -> Billing:
        """The accounts' invoices, credit notes and refunds as of the run's last day: read
        once, and only by a run with a plan paid on payment or clawing back on refunds."""
        if self._billing is None:
            self._billing = Billing(self.as_of, self.memo)
        return self._billing


# --- Billing documents: pay on paid, claw back on refunds ------------------------------------


def _billed_day(document: BillingDocument) -> tuple[dt.date, dt.date]:
    """The usage days a document bills: its period, or its issue day when it has none."""
    issued = document.issued_at.astimezone(dt.UTC).date()
    return (document.period_start or issued, document.period_end or document.period_start or issued)


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


@dataclass
class Payment:
    """Whether the invoices billing one day are paid, as of a run's last day (``as_of``).

    ``state`` is ``paid`` (every live invoice billing the day is paid; ``paid_on`` is the
    last payment), ``forfeited`` (one was marked uncollectible) or ``waiting`` (one is open,
    or none has been issued yet: a voided invoice waits for the one that replaces it)."""

    day: dt.date
    state: str
    invoices: list[BillingDocument]
    as_of: dt.date
    paid_on: dt.date | None = None

    def describe(self) -> str:
        """'invoice in_123 ($4,000.00, open since 2026-10-01)', or the invoice not issued yet."""
        if not self.invoices:
            return f"the invoice billing {self.day} (not issued yet)"
        parts = []
        for doc in self.invoices:
            if doc.status == BillingStatus.PAID and doc.paid_at is not None and _day(doc.paid_at) <= self.as_of:
                state = f"paid {_day(doc.paid_at)}"
            else:
                state = f"{'open' if doc.status == BillingStatus.PAID else doc.status} since {_day(doc.issued_at)}"
            parts.append(f"invoice {doc.external_id} ({_money(doc.amount)}, {state})")
        return " and ".join(parts)

    def inputs(self) -> dict:
        return {
            "invoices": ", ".join(doc.external_id for doc in self.invoices) or "not issued yet",
            "billing_day": self.day.isoformat(),
            "payment": self.state,
            **({"paid_on": self.paid_on.isoformat()} if self.paid_on else {}),
        }


class Billing:
    """Billing documents by account, as of a run's last day (documents issued later, and
    payments made later, are not seen: a re-run of a past month sees what it saw then)."""

    def __init__(self, as_of: dt.date, memo: dict) -> None:
        if "billing" not in memo:
            memo["billing"] = list(BillingDocument.objects.order_by("issued_at", "pk"))
        self.as_of = as_of
        self.invoices: dict[int, list[BillingDocument]] = defaultdict(list)
        self.reversals: dict[int, list[BillingDocument]] = defaultdict(list)
        for doc in memo["billing"]:
            if _day(doc.issued_at) > as_of or doc.status == BillingStatus.VOID:
                continue
            if doc.kind == BillingKind.INVOICE:
                self.invoices[doc.account_id].append(doc)
            else:
                self.reversals[doc.account_id].append(doc)

    def paid(self, doc: BillingDocument) -> bool:
        return doc.status == BillingStatus.PAID and doc.paid_at is not None and _day(doc.paid_at) <= self.as_of

    def covering(self, account_id: int, day: dt.date) -> list[BillingDocument]:
        """The account's invoices (issued by the run's last day, not void) billing ``day``."""
        return [doc for doc in self.invoices.get(account_id, ()) if _billed_day(doc)[0] <= day <= _billed_day(doc)[1]]

    def payment(self, account_id: int, day: dt.date) -> Payment:
        invoices = self.covering(account_id, day)
        if any(doc.status == BillingStatus.UNCOLLECTIBLE for doc in invoices):
            return Payment(day, "forfeited", invoices, self.as_of)
        if invoices and all(self.paid(doc) for doc in invoices):
            return Payment(day, "paid", invoices, self.as_of, max(_day(doc.paid_at) for doc in invoices))
        return Payment(day, "waiting", invoices, self.as_of)

    def reversals_of(self, account_id: int, invoice: BillingDocument) -> list[BillingDocument]:
        """Refunds and credit notes of ``invoice``: those naming it, and those naming no
        invoice whose billed day (their period's start, else their issue day) it bills."""
        start, end = _billed_day(invoice)
        return [
            doc
            for doc in self.reversals.get(account_id, ())
            if doc.invoice_external_id == invoice.external_id
            or (not doc.invoice_external_id and start <= _billed_day(doc)[0] <= end)
        ]


# --- Land ------------------------------------------------------------------------------


@dataclass
class LandDeal:
    contract: Contract
    assignment: Assignment
    version: PlanVersion

    @property
    def params(self) -> dict:
        return self.version.parameters


def land_deals(run: Run) -> list[LandDeal]:
    """New logos (contracts that amend nothing) signed while their land AE was on a land plan."""
    deals = []
    by_person: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in run.assignments:
        if assignment.plan.type == PlanType.LAND:
            by_person[assignment.person_id].append(assignment)
    for contract in run.contracts:
        if contract.amends_id is not None:
            continue
        person = run.owners.on(contract.account_id, OwnerRole.LAND_AE, contract.signed_on)
        for assignment in by_person.get(person, ()):
            version = run.version(assignment, contract.signed_on)
            if run.covers(assignment, contract.signed_on) and version is not None:
                deals.append(LandDeal(contract, assignment, version))
                break
    deals.sort(key=lambda deal: (deal.contract.signed_on, deal.contract.pk))
    return deals


def _checkpoint_days(deal: LandDeal) -> list[tuple[int, dict]]:
    return [(k, entry) for k, entry in enumerate(deal.params["schedule"]) if entry.get("burn_floor")]


def _recheck_until(deal: LandDeal) -> dt.date:
    clawback = deal.params.get("clawback") or {}
    return deal.contract.start_on + dt.timedelta(days=int(clawback.get("at_day", 365)))


def _month_ends(start: dt.date, until: dt.date) -> list[dt.date]:
    days, month = [], month_start(start)
    while month_end(month) <= until:
        if month_end(month) > start:
            days.append(month_end(month))
        month = add_months(month, 1)
    return days


def land_targets(run: Run, deals: list[LandDeal]) -> None:
    """Signature shares, gated shares (paid, held, released or forfeited) and clawbacks."""
    checkpoints = []
    for deal in deals:
        c = deal.contract
        for _, entry in _checkpoint_days(deal):
            day = c.start_on + dt.timedelta(days=int(entry["at_day"]))
            if day <= run.as_of:
                checkpoints.append((c.account_id, day))
        clawback = deal.params.get("clawback")
        if clawback:
            day = c.start_on + dt.timedelta(days=int(clawback["at_day"]))
            if day <= run.as_of:
                checkpoints.append((c.account_id, day))
    run.burn(checkpoints)
    # Held shares are re-checked at every month end until the clawback day.
    rechecks = []
    for deal in deals:
        c = deal.contract
        for _, entry in _checkpoint_days(deal):
            day = c.start_on + dt.timedelta(days=int(entry["at_day"]))
            if day <= run.as_of and _below(run.burn_on(c.account_id, day).burn_rate, _d(entry["burn_floor"])):
                until = min(run.as_of, _recheck_until(deal))
                rechecks += [(c.account_id, m) for m in _month_ends(day, until)]
    run.burn(rechecks)
    for deal in deals:
        _land_deal_targets(run, deal)


def _below(burn: Decimal | None, floor: Decimal) -> bool:
    return burn is None or burn < floor


def _share_amounts(total: Decimal, schedule: list[dict]) -> list[Decimal]:
    """Each schedule entry's cents, rounded on the running share so the entries add back
    to the total (two halves of $1,234.567 are $617.28 and $617.29, not $617.28 twice)."""
    amounts, running, paid = [], ZERO, ZERO
    for entry in schedule:
        running += _d(entry["share"])
        amount = cents(total * running) - paid
        amounts.append(amount)
        paid += amount
    return amounts


def _clawback_burn(point, contract: Contract) -> Decimal | None:
    """Burn at the clawback day; when no commitment is in force that day (a one-year
    contract ends the day before day 365), the run rate is measured against the deal's own
    commit rather than counting as no burn at all."""
    from usage.signals.metrics import ratio

    if point.committed_arr:
        return point.burn_rate
    return ratio(point.run_rate, contract.committed_arr)


def _pay(run: Run, deal: LandDeal, billing_day: dt.date, target: Target) -> tuple[dt.date, Decimal]:
    """Add a land share as the plan pays it; (the day its invoice bills, the amount paid).

    Booked (the default): the target as it is. Paid (``payment_basis: paid``): the share
    waits for the invoices billing ``billing_day`` (the contract's start for the signature
    share, the checkpoint for a gated one). Paid by the share's own month: the target as it
    is. Otherwise a hold in the share's month (``…:awaiting_payment``), undone and paid as a
    release (``…:on_payment``) in the month the last of those invoices is paid, or undone
    as forfeited when one is marked uncollectible."""
    if deal.params.get("payment_basis", "booked") != "paid":
        run.add(target)
        return billing_day, target.amount
    payment = run.billing.payment(deal.contract.account_id, billing_day)
    inputs = {**target.inputs, **payment.inputs()}
    if payment.state == "paid" and month_start(payment.paid_on) <= target.home:
        target.inputs = inputs
        target.explanation += f" Paid on payment: {payment.describe()}."
        run.add(target)
        return billing_day, target.amount
    outcome = {"paid": "released", "forfeited": "forfeited", "waiting": "held"}[payment.state]
    if outcome == "held":
        says = f"It waits for payment of {payment.describe()}; it is paid in the month that invoice is paid."
    elif outcome == "released":
        says = f"It waited for payment of {payment.describe()}; released in {payment.paid_on:%B %Y}."
    else:
        says = f"It waited for payment of {payment.describe()}, which was marked uncollectible: forfeited."
    what = target.explanation.removesuffix(".")
    run.add(
        Target(
            person_id=target.person_id,
            kind=LineKind.HOLD,
            key=f"{target.key}:awaiting_payment",
            amount=target.amount if outcome == "held" else ZERO,
            home=target.home,
            plan_version_id=target.plan_version_id,
            account_id=target.account_id,
            inputs={
                **inputs,
                "outcome": outcome,
                "releases_if": f"{payment.describe()} is paid",
                "earned_as": target.kind,
            },
            explanation=f"{what}; the plan pays on payment. {says}",
        )
    )
    if outcome != "released":
        return billing_day, ZERO
    run.add(
        Target(
            person_id=target.person_id,
            kind=LineKind.RELEASE,
            key=f"{target.key}:on_payment",
            amount=target.amount,
            home=month_start(payment.paid_on),
            plan_version_id=target.plan_version_id,
            account_id=target.account_id,
            inputs={**inputs, "earned_in": f"{target.home:%Y-%m}"},
            explanation=f"{what}, earned in {target.home:%B %Y} and held for payment: {payment.describe()}, "
            "so it is paid now.",
        )
    )
    return billing_day, target.amount


def _refund_clawbacks(
    run: Run, deal: LandDeal, paid: list[tuple[dt.date, Decimal]], gated: set[int], common: dict
) -> tuple[Decimal, Decimal]:
    """Clawbacks for the refunds and credit notes of the invoices the deal's paid shares
    rest on (``refund_clawback: true``); what they take back in all and of the gated shares
    (cents(refunded share of the invoice × the gated shares resting on it), per invoice).

    Per invoice, refunds in the order issued: after refunds r₁…rⱼ, what is clawed back in
    all is cents(min(1, (r₁+…+rⱼ) ÷ invoice amount) × commission paid on the invoice), and
    refund j's line is that minus what r₁…rⱼ₋₁ clawed: the lines add up exactly, and the
    total never exceeds what was paid."""
    c = deal.contract
    on_invoice: dict[int, tuple[BillingDocument, Decimal, Decimal]] = {}
    for k, (day, amount) in enumerate(paid):
        if amount <= 0:
            continue
        for invoice in run.billing.covering(c.account_id, day):
            _, commission, of_gated = on_invoice.get(invoice.pk, (invoice, ZERO, ZERO))
            on_invoice[invoice.pk] = (invoice, commission + amount, of_gated + (amount if k in gated else ZERO))
    total = gated_total = ZERO
    for invoice, commission, of_gated in on_invoice.values():
        if invoice.amount <= 0:
            continue
        refunded = clawed = ZERO
        for doc in run.billing.reversals_of(c.account_id, invoice):
            refunded += doc.amount
            cumulative = cents(min(ONE, refunded / invoice.amount) * commission)
            amount = cumulative - clawed
            clawed = cumulative
            if not amount:
                continue
            total += amount
            what = doc.get_kind_display().lower()
            attributed = (
                ""
                if doc.invoice_external_id
                else f" (it names no invoice; attributed by the day it bills, {_billed_day(doc)[0]})"
            )
            run.add(
                Target(
                    kind=LineKind.CLAWBACK,
                    key=f"land:{c.pk}:refund:{doc.pk}",
                    amount=-amount,
                    home=month_start(_day(doc.issued_at)),
                    inputs={
                        "deal": c.external_id,
                        "document": doc.external_id,
                        "document_kind": doc.kind,
                        "document_amount": str(doc.amount),
                        "issued_on": _day(doc.issued_at).isoformat(),
                        "invoice": invoice.external_id,
                        "invoice_amount": str(invoice.amount),
                        "refunded_so_far": str(refunded),
                        "commission_on_invoice": str(commission),
                        "clawed_back_so_far": str(clawed),
                        "formula": f"−(min(1, {_money(refunded)} ÷ {_money(invoice.amount)}) × "
                        f"{_money(commission)} − {_money(clawed - amount)} clawed before)",
                    },
                    explanation=f"Refund clawback on {c.account.name}: {what} {doc.external_id} "
                    f"({_money(doc.amount)}, {_day(doc.issued_at)}) on invoice {invoice.external_id} "
                    f"({_money(invoice.amount)}){attributed}. {_money(refunded)} of the invoice is refunded so far, "
                    f"so {_pct(min(ONE, refunded / invoice.amount))} of the {_money(commission)} commission paid on it "
                    f"is taken back: {_money(amount)} with this line, {_money(clawed)} in all.",
                    **common,
                )
            )
        gated_total += cents(min(ONE, refunded / invoice.amount) * of_gated)
    return total, gated_total


def _land_deal_targets(run: Run, deal: LandDeal) -> None:
    c, p = deal.contract, deal.params
    person = deal.assignment.person_id
    rate = _d(p["base_rate"])
    total = c.committed_arr * rate
    base = {
        "deal": c.external_id,
        "committed_arr": str(c.committed_arr),
        "base_rate": str(rate),
        "plan": str(deal.version),
        "signed_on": c.signed_on.isoformat(),
        "start_on": c.start_on.isoformat(),
    }
    common = {"person_id": person, "plan_version_id": deal.version.pk, "account_id": c.account_id}
    gated_paid = ZERO
    # (the day each share's invoice bills, the amount of it paid as of the run): what the
    # refund clawback reads.
    paid: list[tuple[dt.date, Decimal]] = []
    gated: set[int] = set()  # which of ``paid`` are gated shares (the burn clawback's)
    amounts = _share_amounts(total, p["schedule"])
    for k, entry in enumerate(p["schedule"]):
        share = _d(entry["share"])
        amount = amounts[k]
        floor = _d(entry["burn_floor"]) if entry.get("burn_floor") else None
        at_day = int(entry["at_day"])
        key = f"land:{c.pk}:share{k}"
        if floor is None:
            day = c.signed_on if at_day == 0 else c.start_on + dt.timedelta(days=at_day)
            if day > run.as_of:
                continue
            when = "at signature" if at_day == 0 else f"on day {at_day} ({day})"
            paid.append(
                _pay(
                    run,
                    deal,
                    c.start_on if at_day == 0 else day,
                    Target(
                        kind=LineKind.COMMISSION,
                        key=key,
                        amount=amount,
                        home=month_start(day),
                        inputs={
                            **base,
                            "share": str(share),
                            "formula": f"{_money(c.committed_arr)} × {_pct(rate)} × {_pct(share)}",
                        },
                        explanation=f"{_pct(share)} of the {_pct(rate)} commission on {c.account.name}'s "
                        f"{_money(c.committed_arr)} commitment, paid {when}.",
                        **common,
                    ),
                )
            )
            continue
        day = c.start_on + dt.timedelta(days=at_day)
        if day > run.as_of:
            continue
        point = run.burn_on(c.account_id, day)
        gate = {
            **base,
            "share": str(share),
            "checkpoint": day.isoformat(),
            "burn_at_checkpoint": str(point.burn_rate),
            "run_rate_at_checkpoint": str(point.run_rate),
            "burn_floor": str(floor),
        }
        if not _below(point.burn_rate, floor):
            paid.append(
                _pay(
                    run,
                    deal,
                    day,
                    Target(
                        kind=LineKind.COMMISSION,
                        key=key,
                        amount=amount,
                        home=month_start(day),
                        inputs={**gate, "formula": f"{_money(c.committed_arr)} × {_pct(rate)} × {_pct(share)}"},
                        explanation=f"Day-{at_day} share for {c.account.name}: burn was {_pct(point.burn_rate)} on "
                        f"{day}, at or above the {_pct(floor)} floor, so {_pct(share)} of the commission is paid.",
                        **common,
                    ),
                )
            )
            gated_paid += paid[-1][1]
            gated.add(len(paid) - 1)
            continue
        # Held: re-checked at each month end until the clawback day.
        until = _recheck_until(deal)
        released_on = None
        for month_day in _month_ends(day, min(run.as_of, until)):
            if not _below(run.burn_on(c.account_id, month_day).burn_rate, floor):
                released_on = month_day
                break
        outcome = "released" if released_on else ("forfeited" if run.as_of >= until else "held")
        run.add(
            Target(
                kind=LineKind.HOLD,
                key=f"{key}:hold",
                amount=amount if outcome == "held" else ZERO,
                home=month_start(day),
                inputs={
                    **gate,
                    "outcome": outcome,
                    "releases_if": f"burn reaches {_pct(floor)} at a month end",
                    "recheck_until": until.isoformat(),
                    "formula": f"{_money(c.committed_arr)} × {_pct(rate)} × {_pct(share)}",
                },
                explanation=(
                    f"Day-{at_day} share for {c.account.name} held: burn was {_pct(point.burn_rate)} on {day}, "
                    f"under the {_pct(floor)} floor. It is paid at the first month end with burn at or above "
                    f"the floor, and forfeited if that has not happened by {until}."
                    + (f" Released on {released_on}." if released_on else "")
                    + (" Forfeited." if outcome == "forfeited" else "")
                ),
                **common,
            )
        )
        if released_on:
            burn_then = run.burn_on(c.account_id, released_on).burn_rate
            paid.append(
                _pay(
                    run,
                    deal,
                    day,
                    Target(
                        kind=LineKind.RELEASE,
                        key=f"{key}:release",
                        amount=amount,
                        home=month_start(released_on),
                        inputs={
                            **gate,
                            "released_on": released_on.isoformat(),
                            "burn_at_release": str(burn_then),
                            "formula": f"{_money(c.committed_arr)} × {_pct(rate)} × {_pct(share)}",
                        },
                        explanation=f"The held day-{at_day} share for {c.account.name} is paid: burn reached "
                        f"{_pct(burn_then)} on {released_on}, at or above the {_pct(floor)} floor.",
                        **common,
                    ),
                )
            )
            gated_paid += paid[-1][1]
            gated.add(len(paid) - 1)
    if p.get("refund_clawback"):
        refunded, refunded_gated = _refund_clawbacks(run, deal, paid, gated, common)
        # What refunds took back of the gated shares is not taken back twice, and never
        # more than was paid on the deal in all.
        paid_in_all = sum((amount for _, amount in paid), ZERO)
        gated_paid = max(ZERO, min(gated_paid - refunded_gated, paid_in_all - refunded))
    clawback = p.get("clawback")
    if clawback and gated_paid:
        day = c.start_on + dt.timedelta(days=int(clawback["at_day"]))
        floor = _d(clawback["burn_floor"])
        if day <= run.as_of:
            point = run.burn_on(c.account_id, day)
            burn = _clawback_burn(point, c)
            if _below(burn, floor):
                soft = clawback.get("mode") == "soft"
                home = add_months(quarter_start(day), 3) if soft else month_start(day)
                if home <= run.period:
                    run.add(
                        Target(
                            kind=LineKind.CLAWBACK,
                            key=f"land:{c.pk}:clawback",
                            amount=-gated_paid,
                            home=home,
                            inputs={
                                **base,
                                "clawback_day": day.isoformat(),
                                "burn_at_clawback": str(burn),
                                "clawback_floor": str(floor),
                                "mode": clawback.get("mode", "hard"),
                                "gated_paid": str(gated_paid),
                                "formula": f"−{_money(gated_paid)} (the gated shares paid)",
                            },
                            explanation=f"Clawback on {c.account.name}: burn was {_pct(burn)} at the "
                            f"{int(clawback['at_day'])}-day mark ({day}), under the {_pct(floor)} floor, so the "
                            f"gated shares already paid ({_money(gated_paid)}) are "
                            + ("deducted from the next quarter." if soft else "reversed."),
                            **common,
                        )
                    )


def record_attainment(
    run: Run,
    assignment: Assignment,
    version: PlanVersion,
    quota_period: tuple[dt.date, dt.date],
    *,
    credited: Decimal,
    share: Decimal,
    quota: Decimal,
    tiers: list[dict],
    inputs: dict,
) -> None:
    """The statement header's row: credit against the ramp-relieved quota and the tier reached."""
    attainment = (credited / quota).quantize(Decimal("0.0001")) if quota else None
    run.attainments.append(
        Attainment(
            person_id=assignment.person_id,
            period=run.period,
            assignment=assignment,
            plan_version=version,
            quota_period_start=quota_period[0],
            quota_period_end=quota_period[1],
            credited=cents(credited),
            quota=assignment.quota,
            ramp_share=share,
            effective_quota=cents(quota),
            attainment=attainment,
            multiplier=tier_reached(attainment, tiers),
            inputs=inputs,
        )
    )


def land_credit_and_accelerators(run: Run, deals: list[LandDeal]) -> None:
    """Quota credit per quota period, attainment with ramp relief, marginal accelerators."""
    by_assignment: dict[int, list[tuple[dt.date, Decimal, LandDeal, str]]] = defaultdict(list)
    for deal in deals:
        c, p = deal.contract, deal.params
        credit = p.get("quota_credit") or {"basis": "committed_arr"}
        if credit.get("basis") == "estimate" and c.deal_desk_estimate is not None:
            estimate = min(c.deal_desk_estimate, c.committed_arr)
            by_assignment[deal.assignment.pk].append((c.signed_on, estimate, deal, "estimate at signing"))
            remainder = c.committed_arr - estimate
            for milestone in credit.get("milestones", []):
                day = c.start_on + dt.timedelta(days=int(milestone["at_day"]))
                if day <= run.as_of and remainder > 0:
                    by_assignment[deal.assignment.pk].append(
                        (day, remainder * _d(milestone["share"]), deal, f"milestone day {milestone['at_day']}")
                    )
        else:
            by_assignment[deal.assignment.pk].append((c.signed_on, c.committed_arr, deal, "committed ARR"))
    for assignment in run.assignments:
        if assignment.plan.type != PlanType.LAND:
            continue
        events = sorted(
            (e for e in by_assignment.get(assignment.pk, []) if e[0] <= run.as_of),
            key=lambda e: (e[0], e[2].contract.pk),
        )
        periods: dict[tuple[dt.date, dt.date], list] = defaultdict(list)
        for event in events:
            periods[_quota_period(assignment, event[0])].append(event)
        current = _quota_period(assignment, run.as_of)
        periods.setdefault(current, [])
        for (start, end), credits in sorted(periods.items()):
            share = ramp_share(assignment, run.started_on.get(assignment.person_id), start)
            quota = assignment.quota * share
            version = run.version(assignment, min(end, run.as_of)) or (credits[0][2].version if credits else None)
            if version is None:
                continue
            tiers = version.parameters.get("accelerators", [])
            cumulative = ZERO
            for day, amount, deal, why in credits:
                rate = _d(deal.params["base_rate"])
                extra, parts = marginal_accelerator(
                    before=cumulative, amount=amount, quota=quota, rate=rate, tiers=tiers
                )
                cumulative += amount
                if parts:
                    run.add(
                        Target(
                            person_id=assignment.person_id,
                            kind=LineKind.ACCELERATOR,
                            key=f"land:{deal.contract.pk}:accel:{why}",
                            amount=extra,
                            home=month_start(day),
                            plan_version_id=deal.version.pk,
                            account_id=deal.contract.account_id,
                            inputs={
                                "deal": deal.contract.external_id,
                                "credit": str(amount),
                                "credited_before": str(cumulative - amount),
                                "quota": str(assignment.quota),
                                "ramp_share": str(share),
                                "effective_quota": str(quota),
                                "base_rate": str(rate),
                                "tiers": parts,
                                "formula": " + ".join(
                                    f"{_money(_d(t['credit_above']))} × {_pct(rate)} × ({t['multiplier']} − prior)"
                                    for t in parts
                                ),
                            },
                            explanation=f"Accelerator on {deal.contract.account.name}: this deal took credit from "
                            f"{_money(cumulative - amount)} to {_money(cumulative)} against an effective quota of "
                            f"{_money(quota)}; only the part above each threshold earns the higher multiplier.",
                        )
                    )
            if (start, end) == current:
                record_attainment(
                    run,
                    assignment,
                    version,
                    (start, end),
                    credited=cumulative,
                    share=share,
                    quota=quota,
                    tiers=tiers,
                    inputs={
                        "deals": [e[2].contract.external_id for e in credits],
                        "basis": (version.parameters.get("quota_credit") or {}).get("basis", "committed_arr"),
                    },
                )


# --- Expand, SPIFF, CS, pilot ---------------------------------------------------------

EXPAND_CREDIT_SQL = """
WITH cur AS (
    SELECT account_id, day, SUM(revenue) AS revenue FROM usage_dailyrollup
    WHERE day BETWEEN %(start)s AND %(end)s GROUP BY account_id, day
),
prev AS (
    SELECT account_id, day + %(length)s AS day, SUM(revenue) AS revenue FROM usage_dailyrollup
    WHERE day BETWEEN %(start)s - %(length)s AND %(end)s - %(length)s GROUP BY account_id, day
),
delta AS (
    SELECT COALESCE(cur.account_id, prev.account_id) AS account_id, COALESCE(cur.day, prev.day) AS day,
           COALESCE(cur.revenue, 0) - COALESCE(prev.revenue, 0) AS delta
    FROM cur FULL OUTER JOIN prev ON prev.account_id = cur.account_id AND prev.day = cur.day
),
landed AS (
    SELECT account_id, MIN(signed_on) AS landed_on FROM accounts_contract WHERE signed_on <= %(end)s GROUP BY account_id
),
owners AS (
    SELECT account_id, role, person_id, start_on, COALESCE(end_on, 'infinity'::date) AS end_on
    FROM accounts_ownership WHERE role IN ('land_ae', 'expand_ae', 'csm')
)
SELECT
    CASE WHEN l.landed_on IS NOT NULL AND d.day < l.landed_on + %(split_days)s THEN land.person_id
         ELSE COALESCE(exp.person_id, csm.person_id) END AS person_id,
    d.account_id,
    d.day,
    SUM(d.delta)
FROM delta d
LEFT JOIN landed l ON l.account_id = d.account_id
LEFT JOIN owners land ON land.account_id = d.account_id AND land.role = 'land_ae'
    AND d.day BETWEEN land.start_on AND land.end_on
LEFT JOIN owners exp ON exp.account_id = d.account_id AND exp.role = 'expand_ae'
    AND d.day BETWEEN exp.start_on AND exp.end_on
LEFT JOIN owners csm ON csm.account_id = d.account_id AND csm.role = 'csm'
    AND d.day BETWEEN csm.start_on AND csm.end_on
-- Per person and day (to sum any part of the window) and per person and account (to say
-- which accounts moved): a few thousand rows whatever the number of account-days.
GROUP BY GROUPING SETS ((1, 3), (1, 2))
"""


@dataclass
class Expansion:
    """One window's expansion credit: per person, by day and by account."""

    length: int
    by_day: dict[int, dict[dt.date, Decimal]]
    by_account: dict[int, dict[int, Decimal]]

    def credited(self, person_id: int, first: dt.date, last: dt.date) -> Decimal:
        """Net-new ARR for the person's days in [first, last], annualized over the window."""
        days = self.by_day.get(person_id, {})
        return sum((delta for day, delta in days.items() if first <= day <= last), ZERO) * 365 / self.length


def expansion_by_beneficiary(run: Run, start: dt.date, end: dt.date, split_months: int) -> Expansion:
    """Σ (revenue on a day − revenue L days before) over the window of L days, credited to
    whoever the split gives that day: the land AE in the first ``split_months`` after
    land, then the expand AE/AM, or the CSM without one. Attribution happens in SQL."""
    length = (end - start).days + 1
    params = {"start": start, "end": end, "length": length, "split_days": round(split_months * 365 / 12)}
    with connection.cursor() as cursor:
        cursor.execute(EXPAND_CREDIT_SQL, params)
        rows = cursor.fetchall()
    by_day: dict[int, dict[dt.date, Decimal]] = defaultdict(dict)
    by_account: dict[int, dict[int, Decimal]] = defaultdict(dict)
    for person, account_id, day, delta in rows:
        if person is None:
            continue
        if day is not None:
            by_day[person][day] = delta
        else:
            by_account[person][account_id] = delta
    return Expansion(length, by_day, by_account)


def quota_periods(assignment: Assignment, as_of: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Every quota period of the assignment from its start to the one holding ``as_of``."""
    last = min(as_of, assignment.end_on or as_of)
    periods, day = [], assignment.start_on
    while day <= last:
        start, end = _quota_period(assignment, day)
        periods.append((start, end))
        day = end + dt.timedelta(days=1)
    return periods


def expand_targets(run: Run) -> None:
    """Quota on net-new ARR from consumption per quota period; the open one is recomputed
    quarter to date each month and the difference paid (true-up)."""
    windows: dict[tuple[dt.date, dt.date, int], Expansion] = run.memo.setdefault("expansion", {})
    for assignment in run.assignments:
        if assignment.plan.type != PlanType.EXPAND:
            continue
        for quota_start, end in quota_periods(assignment, run.as_of):
            if run.settled_period(end):
                run.settled.append(f"expand:{assignment.pk}:{max(quota_start, assignment.start_on):%Y-%m-%d}")
                continue
            _expand_period(run, assignment, quota_start, end, windows)


def _expand_period(run: Run, assignment: Assignment, quota_start: dt.date, end: dt.date, windows: dict) -> None:
    """One quota period of an expand assignment. The window is the quota period to date,
    shared by everyone; a person credits only the days their assignment covers."""
    window_end = min(end, run.as_of)
    start = max(quota_start, assignment.start_on)
    last = min(window_end, assignment.end_on or window_end)
    version = run.version(assignment, last)
    if version is None or last < start:
        return
    split = int(version.parameters.get("credit_split_months", 12))
    if (quota_start, window_end, split) not in windows:
        windows[(quota_start, window_end, split)] = expansion_by_beneficiary(run, quota_start, window_end, split)
    expansion = windows[(quota_start, window_end, split)]
    by_account = expansion.by_account.get(assignment.person_id, {})
    length = expansion.length
    credited = expansion.credited(assignment.person_id, start, last)
    rate = _d(version.parameters["rate"])
    share = ramp_share(assignment, run.started_on.get(assignment.person_id), start)
    quota = assignment.quota * share
    tiers = version.parameters.get("tiers", [])
    positive = max(ZERO, credited)
    extra, parts = marginal_accelerator(before=ZERO, amount=positive, quota=quota, rate=rate, tiers=tiers)
    quarter = f"{start:%Y-%m-%d}"
    # The quarter's own month: the quarter-to-date amount is recomputed monthly, its home stays put.
    home = month_start(end)
    inputs = {
        "window": f"{quota_start} – {window_end}",
        "credited_days": f"{start} – {last}",
        "days": length,
        "net_new_arr": str(cents(credited)),
        "accounts": len(by_account),
        "rate": str(rate),
        "quota": str(assignment.quota),
        "ramp_share": str(share),
        "effective_quota": str(quota),
    }
    run.add(
        Target(
            person_id=assignment.person_id,
            kind=LineKind.COMMISSION,
            key=f"expand:{assignment.pk}:{quarter}",
            amount=positive * rate,
            home=home,
            plan_version_id=version.pk,
            inputs={**inputs, "formula": f"{_money(cents(positive))} × {_pct(rate)}"},
            explanation=f"Net-new ARR from consumption credited to you from {start} to {window_end}: "
            f"{_money(cents(credited))} (revenue on each day minus the same day {length} days earlier, "
            f"annualized; credit follows who owned the account that day). Paid at {_pct(rate)}; "
            "recomputed each month of the quarter, the difference is paid.",
        )
    )
    if parts:
        run.add(
            Target(
                person_id=assignment.person_id,
                kind=LineKind.ACCELERATOR,
                key=f"expand:{assignment.pk}:{quarter}:accel",
                amount=extra,
                home=home,
                plan_version_id=version.pk,
                inputs={
                    **inputs,
                    "tiers": parts,
                    "formula": "Σ credit above threshold × rate × (multiplier − prior)",
                },
                explanation="Accelerator: the net-new ARR above each attainment threshold earns the tier's "
                "multiplier, only on the part above it.",
            )
        )
    if not quota_start <= run.as_of <= end:
        return
    record_attainment(
        run,
        assignment,
        version,
        (quota_start, end),
        credited=credited,
        share=share,
        quota=quota,
        tiers=tiers,
        inputs={"basis": "net-new ARR from consumption"},
    )


def spiff_targets(run: Run) -> None:
    """New workload / region (flat), new SKU (% of its first 30 days' ARR), multi-year
    recommit at a higher floor (% of the new TCV): to the account's AE that day."""
    from usage.models import DailyRollup, FirstSeen, Meter

    spiffs = [a for a in run.assignments if a.plan.type == PlanType.SPIFF]
    if not spiffs:
        return
    by_person = defaultdict(list)
    for assignment in spiffs:
        by_person[assignment.person_id].append(assignment)

    def owner_plan(account_id: int, day: dt.date):
        for role in (OwnerRole.LAND_AE, OwnerRole.EXPAND_AE):
            person = run.owners.on(account_id, role, day)
            for assignment in by_person.get(person, ()):
                version = run.version(assignment, day)
                if run.covers(assignment, day) and version is not None:
                    return assignment, version
        return None, None

    meters = dict(Meter.objects.values_list("key", "pk"))
    firsts = list(FirstSeen.objects.filter(first_day__lte=run.as_of).select_related("account"))
    # Whatever a new logo uses on its first day of usage is the land, not an expansion.
    first_usage: dict[int, dt.date] = {}
    for first in firsts:
        if first.kind == "meter" and (
            first.account_id not in first_usage or first.first_day < first_usage[first.account_id]
        ):
            first_usage[first.account_id] = first.first_day
    firsts = [f for f in firsts if f.first_day > first_usage.get(f.account_id, dt.date.min)]
    sku_windows = []
    for first in firsts:
        assignment, version = owner_plan(first.account_id, first.first_day)
        if assignment is None:
            continue
        params = version.parameters
        common = {
            "person_id": assignment.person_id,
            "plan_version_id": version.pk,
            "account_id": first.account_id,
            "home": month_start(first.first_day),
        }
        key = f"spiff:{first.kind}:{first.account_id}:{first.value}"
        if first.kind == "workload" and params.get("new_workload"):
            amount = _d(params["new_workload"])
            run.add(
                Target(
                    kind=LineKind.SPIFF,
                    key=key,
                    amount=amount,
                    inputs={
                        "trigger": "new workload",
                        "workload": first.value,
                        "first_seen": first.first_day.isoformat(),
                        "formula": f"flat {_money(amount)}",
                    },
                    explanation=f"New workload '{first.value}' went live on {first.account.name} on {first.first_day}.",
                    **common,
                )
            )
        elif first.kind == "region" and params.get("new_region"):
            amount = _d(params["new_region"])
            run.add(
                Target(
                    kind=LineKind.SPIFF,
                    key=key,
                    amount=amount,
                    inputs={
                        "trigger": "new region",
                        "region": first.value,
                        "first_seen": first.first_day.isoformat(),
                        "formula": f"flat {_money(amount)}",
                    },
                    explanation=f"New region '{first.value}' activated on {first.account.name} on {first.first_day}.",
                    **common,
                )
            )
        elif first.kind == "meter" and params.get("new_sku_rate") and first.value in meters:
            window_end = first.first_day + dt.timedelta(days=29)
            if window_end <= run.as_of:
                sku_windows.append((first, assignment, version, window_end, key, common))
    for first, _assignment, version, window_end, key, common in sku_windows:
        revenue = (
            DailyRollup.objects.filter(
                account_id=first.account_id, meter_id=meters[first.value], day__range=(first.first_day, window_end)
            ).aggregate(total=Sum("revenue"))["total"]
            or ZERO
        )
        arr = revenue * 365 / 30
        rate = _d(version.parameters["new_sku_rate"])
        run.add(
            Target(
                kind=LineKind.SPIFF,
                key=key,
                amount=arr * rate,
                inputs={
                    "trigger": "new SKU",
                    "meter": first.value,
                    "first_seen": first.first_day.isoformat(),
                    "first_30_days_revenue": str(revenue),
                    "incremental_arr": str(cents(arr)),
                    "formula": f"{_money(cents(arr))} × {_pct(rate)}",
                },
                explanation=f"New SKU '{first.value}' adopted by {first.account.name} on {first.first_day}: its "
                "first 30 days annualized is the incremental ARR.",
                **common,
            )
        )
    for contract in run.contracts:
        if contract.amends_id is None or contract.signed_on > run.as_of:
            continue
        previous = run.contract_by_id.get(contract.amends_id)
        term_days = (contract.end_on - contract.start_on).days + 1
        if previous is None or contract.committed_arr <= previous.committed_arr or term_days < 730:
            continue
        assignment, version = owner_plan(contract.account_id, contract.signed_on)
        if assignment is None or not version.parameters.get("recommit_rate"):
            continue
        rate = _d(version.parameters["recommit_rate"])
        run.add(
            Target(
                person_id=assignment.person_id,
                kind=LineKind.SPIFF,
                key=f"spiff:recommit:{contract.pk}",
                amount=contract.tcv * rate,
                home=month_start(contract.signed_on),
                plan_version_id=version.pk,
                account_id=contract.account_id,
                inputs={
                    "trigger": "multi-year recommit at a higher floor",
                    "contract": contract.external_id,
                    "previous_committed_arr": str(previous.committed_arr),
                    "committed_arr": str(contract.committed_arr),
                    "tcv": str(contract.tcv),
                    "formula": f"{_money(contract.tcv)} × {_pct(rate)}",
                },
                explanation=f"{contract.account.name} recommitted for {term_days // 365} years at "
                f"{_money(contract.committed_arr)} (up from {_money(previous.committed_arr)}).",
            )
        )


def _curve(nrr: Decimal, curve: list[dict]) -> Decimal:
    points = [(_d(p["nrr"]), _d(p["payout"])) for p in curve]
    if nrr <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if nrr <= x1:
            return y0 + (y1 - y0) * (nrr - x0) / (x1 - x0)
    return points[-1][1]


def cs_targets(run: Run) -> None:
    """A bonus per quota period on the NRR of the CSM's book at its end (attainment curve).

    One ``account_inputs`` statement per quarter end for every CSM's book together, then
    each book's NRR from its own accounts' rows."""
    from usage.signals.metrics import Thresholds, retention_inputs

    periods = [
        (assignment, start, end)
        for assignment in run.assignments
        if assignment.plan.type == PlanType.CS
        for start, end in quota_periods(assignment, run.as_of)
        if end <= run.as_of  # paid when the quota period closes
    ]
    for assignment, start, end in periods:
        if run.settled_period(end):
            run.settled.append(f"cs:{assignment.pk}:{start}")
    periods = [p for p in periods if not run.settled_period(p[2])]
    csm_accounts = [account_id for (account_id, role) in run.owners.periods if role == OwnerRole.CSM]
    books: dict[dt.date, dict[int, list[int]]] = {}
    inputs: dict[dt.date, dict] = {}
    for end in sorted({end for _, _, end in periods}):
        by_person: dict[int, list[int]] = defaultdict(list)
        for account_id in csm_accounts:
            person = run.owners.on(account_id, OwnerRole.CSM, end)
            if person is not None:
                by_person[person].append(account_id)
        books[end] = by_person
        members = [a for accounts in by_person.values() for a in accounts]
        key = (end, frozenset(members))
        if key not in (retention := run.memo.setdefault("retention", {})):
            retention[key] = retention_inputs(as_of=end, accounts=members, thresholds=Thresholds())
        inputs[end] = retention[key]
    for assignment, start, end in periods:
        _cs_period(run, assignment, start, end, books[end].get(assignment.person_id, []), inputs[end])


def _cs_period(
    run: Run, assignment: Assignment, start: dt.date, end: dt.date, book: list[int], inputs_by_account: dict
) -> None:
    from usage.signals.metrics import Thresholds, portfolio

    version = run.version(assignment, end)
    if version is None:
        return
    rows = [inputs_by_account[a] for a in book if a in inputs_by_account]
    figures = portfolio(rows, as_of=end, t=Thresholds()) if rows else None
    nrr = figures.nrr if figures else None
    payout = _curve(nrr, version.parameters["curve"]) if nrr is not None else ZERO
    target = _d(version.parameters["target_bonus"])
    run.add(
        Target(
            person_id=assignment.person_id,
            kind=LineKind.BONUS,
            key=f"cs:{assignment.pk}:{start}",
            amount=target * payout,
            home=month_start(end),
            plan_version_id=version.pk,
            inputs={
                "book_accounts": len(book),
                "nrr": str(nrr),
                "payout": str(payout),
                "target_bonus": str(target),
                "formula": f"{_money(target)} × {payout}",
            },
            explanation=f"NRR of your book ({len(book)} accounts) at {end}: {_pct(nrr)}; the curve pays "
            f"{payout} × the {_money(target)} target bonus.",
        )
    )


def _window_growth(accounts, start: dt.date, end: dt.date) -> tuple[Decimal, Decimal]:
    """Revenue of ``accounts`` in [start, end] and in the as many days just before."""
    from usage.models import DailyRollup

    length = (end - start).days + 1
    rows = DailyRollup.objects.filter(account__in=accounts)
    now = rows.filter(day__range=(start, end)).aggregate(t=Sum("revenue"))["t"] or ZERO
    before_range = (start - dt.timedelta(days=length), start - dt.timedelta(days=1))
    before = rows.filter(day__range=before_range).aggregate(t=Sum("revenue"))["t"] or ZERO
    return now, before


def pilot_targets(run: Run) -> None:
    """% of net-new consumption revenue of the named accounts over the window, paid at its end,
    with the same growth for comparable accounts outside the pilot for the report."""
    from accounts.models import Account

    for assignment in run.assignments:
        if assignment.plan.type != PlanType.PILOT:
            continue
        version = run.version(assignment, run.as_of)
        if version is None:
            continue
        params = version.parameters
        start = dt.date.fromisoformat(params["window"]["start"])
        end = dt.date.fromisoformat(params["window"]["end"])
        if end > run.as_of:
            continue
        length = (end - start).days + 1
        pilot = list(Account.objects.filter(external_id__in=params["accounts"]))
        segments = {a.segment for a in pilot}
        comparable = Account.objects.filter(segment__in=segments).exclude(pk__in=[a.pk for a in pilot])

        now, before = _window_growth(pilot, start, end)
        other_now, other_before = _window_growth(comparable, start, end)
        net_new = max(ZERO, now - before)
        rate = _d(params["rate"])
        run.add(
            Target(
                person_id=assignment.person_id,
                kind=LineKind.BONUS,
                key=f"pilot:{assignment.pk}:{start}",
                amount=net_new * rate,
                home=month_start(end),
                plan_version_id=version.pk,
                inputs={
                    "window": f"{start} – {end}",
                    "pilot_accounts": len(pilot),
                    "revenue_in_window": str(now),
                    "revenue_before": str(before),
                    "pilot_growth": str((now / before - 1).quantize(Decimal("0.0001")) if before else None),
                    "comparable_accounts": comparable.count(),
                    "comparable_growth": str(
                        (other_now / other_before - 1).quantize(Decimal("0.0001")) if other_before else None
                    ),
                    "formula": f"{_money(net_new)} × {_pct(rate)}",
                },
                explanation=f"Pilot bonus: the {len(pilot)} pilot accounts consumed {_money(now)} from {start} to "
                f"{end} against {_money(before)} in the {length} days before; {_pct(rate)} of the increase.",
            )
        )


def draw_targets(run: Run, deals: list[LandDeal]) -> None:
    """A flat draw for the first N months of each new logo; recoverable draws are
    recovered from later earnings, month by month, never below zero."""
    for assignment in run.assignments:
        if assignment.plan.type != PlanType.DRAW:
            continue
        months_paid: dict[dt.date, list[Target]] = defaultdict(list)
        for deal in deals:
            if deal.assignment.person_id != assignment.person_id or not run.covers(assignment, deal.contract.signed_on):
                continue
            version = run.version(assignment, deal.contract.signed_on)
            if version is None:
                continue
            params = version.parameters
            amount = _d(params["monthly_amount"])
            for k in range(int(params["months"])):
                month = add_months(month_start(deal.contract.signed_on), k)
                if month > run.period:
                    break
                target = Target(
                    person_id=assignment.person_id,
                    kind=LineKind.DRAW,
                    key=f"draw:{assignment.pk}:{deal.contract.pk}:{k}",
                    amount=amount,
                    home=month,
                    plan_version_id=version.pk,
                    account_id=deal.contract.account_id,
                    inputs={
                        "month": k + 1,
                        "of": int(params["months"]),
                        "recoverable": bool(params.get("recoverable", True)),
                        "formula": f"flat {_money(amount)}",
                    },
                    explanation=f"Bridge draw {k + 1} of {params['months']} for the new logo {deal.contract.account.name}"
                    + (
                        ", recovered from later commission."
                        if params.get("recoverable", True)
                        else " (not recoverable)."
                    ),
                )
                run.add(target)
                months_paid[month].append(target)
        recoverable = [t for ts in months_paid.values() for t in ts if t.inputs["recoverable"]]
        if not recoverable:
            continue
        earnings: dict[dt.date, Decimal] = defaultdict(Decimal)
        for target in run.targets:
            if target.person_id == assignment.person_id and target.kind in EARNING_KINDS:
                earnings[target.home] += target.amount
        outstanding = ZERO
        month = min(t.home for t in recoverable)
        while month <= run.period:
            outstanding += sum((t.amount for t in months_paid.get(month, []) if t.inputs["recoverable"]), ZERO)
            recovered = min(outstanding, max(ZERO, earnings.get(month, ZERO)))
            if recovered > 0:
                outstanding -= recovered
                run.add(
                    Target(
                        person_id=assignment.person_id,
                        kind=LineKind.DRAW_RECOVERY,
                        key=f"draw_recovery:{assignment.pk}:{month}",
                        amount=-recovered,
                        home=month,
                        inputs={
                            "earnings": str(earnings[month]),
                            "outstanding_after": str(outstanding),
                            "formula": f"−min(draw balance, {_money(earnings[month])} earned)",
                        },
                        explanation=f"Recovery of bridge draws from {month:%Y-%m} earnings; {_money(outstanding)} still outstanding.",
                    )
                )
            month = add_months(month, 1)


def compute_targets(
    period: dt.date,
    through: dt.date | None = None,
    *,
    overrides: dict[int, list[PlanVersion]] | None = None,
    memo: dict | None = None,
) -> Run:
    """What every key should total as of ``period``'s last day (``through``); ``overrides``
    and ``memo`` as in ``Run``."""
    return compute(Run(month_start(period), through, overrides=overrides, memo=memo))


def compute(run: Run) -> Run:
    """Every phase of a run, in order, into ``run.targets`` and ``run.attainments``."""
    deals = land_deals(run)
    land_targets(run, deals)
    land_credit_and_accelerators(run, deals)
    expand_targets(run)
    spiff_targets(run)
    cs_targets(run)
    pilot_targets(run)
    draw_targets(run, deals)  # last: recovery reads the month's other earnings
    return run


# --- Appending the differences -------------------------------------------------------------


@dataclass
class RunResult:
    period: dt.date
    lines_added: int
    targets: int
    skipped: str = ""


def run_comp(*, period: dt.date, through: dt.date | None = None, user=None) -> RunResult:
    """Compute ``period`` (through ``through`` when the month is not over) and append the
    differences to the ledger (see the module doc)."""
    period = month_start(period)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [COMP_LOCK])
        latest = (
            CompRun.objects.filter(finished_at__isnull=False)
            .order_by("-period")
            .values_list("period", flat=True)
            .first()
        )
        if latest is not None and period < latest:
            return RunResult(period, 0, 0, skipped=f"{latest:%Y-%m} was run after it; its changes land there.")
        started = timezone.now()
        computed = compute_targets(period, through)
        run_row = CompRun.objects.create(period=period, started_at=started, triggered_by=user)
        lines = _differences(computed, run_row)
        LedgerLine.objects.bulk_create(lines, batch_size=1000)
        Attainment.objects.filter(period=period).delete()
        Attainment.objects.bulk_create(computed.attainments)
        CompRun.objects.filter(pk=run_row.pk).update(finished_at=timezone.now(), lines_added=len(lines))
    logger.info("comp run %s: %s targets, %s lines added", period, len(computed.targets), len(lines))
    return RunResult(period, len(lines), len(computed.targets))


def _differences(computed: Run, run_row: CompRun) -> list[LedgerLine]:
    targets = merged_targets(computed)
    people = {person for person, _ in targets} | set(
        LedgerLine.objects.filter(run__isnull=False).values_list("person_id", flat=True).distinct()
    )
    existing, kinds = recorded(
        LedgerLine.objects.filter(person_id__in=people, run__isnull=False)
        .values_list("person_id", "key", "kind")
        .annotate(total=Sum("amount"))
    )
    return differences(
        computed.period,
        targets,
        existing=existing,
        kinds=kinds,
        frozen=approved_periods(people),
        settled=computed.settled,
        run_row=run_row,
    )


def merged_targets(computed: Run) -> dict[tuple[int, str], Target]:
    """The run's targets by (person, key): one key, one total."""
    targets: dict[tuple[int, str], Target] = {}
    for target in computed.targets:
        key = (target.person_id, target.key)
        if key in targets:
            targets[key].amount += target.amount
        else:
            targets[key] = target
    return targets


def recorded(
    rows: Iterable[tuple[int, str, str, Decimal]],
    existing: dict[tuple[int, str], Decimal] | None = None,
    kinds: dict[tuple[int, str], str] | None = None,
) -> tuple[dict[tuple[int, str], Decimal], dict[tuple[int, str], str]]:
    """What the ledger holds per (person, key), and the kind that names each key, from
    (person, key, kind, amount) rows (added to ``existing`` and ``kinds`` when given)."""
    existing = {} if existing is None else existing
    kinds = {} if kinds is None else kinds
    for person_id, key, kind, total in rows:
        existing[(person_id, key)] = existing.get((person_id, key), ZERO) + total
        # A reversal takes the key's own kind, not that of an earlier true-up or adjustment.
        if kind not in (LineKind.TRUE_UP, LineKind.ADJUSTMENT) or (person_id, key) not in kinds:
            kinds[(person_id, key)] = kind
    return existing, kinds


def differences(
    period: dt.date,
    targets: dict[tuple[int, str], Target],
    *,
    existing: dict[tuple[int, str], Decimal],
    kinds: dict[tuple[int, str], str],
    frozen: dict[int, set[dt.date]],
    settled: Iterable[str],
    run_row: CompRun | None = None,
) -> list[LedgerLine]:
    """The lines a run of ``period`` appends (unsaved), given what the ledger holds: pure,
    so a what-if applies the same rules to a ledger it keeps in memory."""
    lines = []
    settled = tuple(settled)
    for pair in sorted(set(targets) | set(existing)):
        if pair not in targets and settled and pair[1].startswith(settled):
            continue  # a settled quota period: left as recorded
        target = targets.get(pair)
        delta = (target.amount if target else ZERO) - existing.get(pair, ZERO)
        if not delta:
            continue
        person_id, key = pair
        lands = open_period(period, frozen.get(person_id, set()))
        kind = target.kind if target else kinds[pair]
        inputs = dict(target.inputs) if target else {"formula": "the amount is no longer owed"}
        explanation = target.explanation if target else "What this line was for no longer applies; it is reversed."
        if target is not None and target.home < period and not existing.get(pair):
            inputs["earned_in"] = f"{target.home:%Y-%m}"  # first computed by this (later) run
        if kind != LineKind.HOLD:
            if lands != period:
                inputs["_frozen"] = f"{period:%Y-%m} was approved"
                explanation += f" ({period:%Y-%m} was already approved: this difference is an adjustment here.)"
                kind = LineKind.ADJUSTMENT
            elif existing.get(pair, ZERO) and (target is None or target.home < period):
                # Recorded before with another amount: late usage, a corrected contract…
                kind = LineKind.TRUE_UP
                inputs["for_period"] = f"{(target.home if target else period):%Y-%m}"
                inputs["previous_total"] = str(existing.get(pair, ZERO))
                inputs["new_total"] = str(target.amount if target else ZERO)
                explanation += " Recomputed: this is the difference from what earlier runs recorded."
        lines.append(
            LedgerLine(
                person_id=person_id,
                period=lands,
                plan_version_id=target.plan_version_id if target else None,
                account_id=target.account_id if target else None,
                kind=kind,
                key=key,
                amount=delta,
                inputs=inputs,
                explanation=explanation,
                run=run_row,
            )
        )
    return lines
