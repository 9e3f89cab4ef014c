"""Writes on statements: finance's approval, and the inquiry thread on a ledger line.

Approval freezes a month: its lines cannot change (the ledger is append-only anyway) and
``comp.periods.open_period`` sends anything computed for it later to the next open month.
An answer to an inquiry may carry an adjustment, which is a new ledger line like any
other correction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from comp.models import Inquiry, InquiryMessage, LedgerLine, LineKind, Statement, StatementStatus
from comp.periods import add_months, approved_periods, month_start, open_period
from comp.selectors import statement_totals
from revops.clock import today_utc
from revops.errors import ApplicationError
from revops.events import emit, emit_many
from revops.idempotency import first_submission
from revops.models import Role, User

# Who approves statements and answers inquiries.
FINANCE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
MAX_BODY = 4000
CENT = Decimal("0.01")
# An adjustment is a correction, not a payroll run: anything this large is a typo.
MAX_ADJUSTMENT = Decimal("10000000")


def is_finance(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role in FINANCE_ROLES)


def _body(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise ApplicationError("Write a message: what is the question (or the answer)?")
    if len(text) > MAX_BODY:
        raise ApplicationError(f"Keep the message under {MAX_BODY} characters.")
    return text


@transaction.atomic
def statement_approve(*, person: User, period: dt.date, approver: User) -> Statement:
    """Approve (freeze) ``person``'s statement for ``period`` with a snapshot of its totals."""
    if not is_finance(approver):
        raise ApplicationError("Only finance can approve statements.")
    period = month_start(period)
    ended_on = add_months(period, 1)
    if ended_on > today_utc():
        raise ApplicationError(
            f"{period:%B %Y} has not ended: its statements can be approved from {ended_on:%B %-d, %Y}, "
            "once the month's usage is in and its comp run is final."
        )
    statement, _ = Statement.objects.select_for_update().get_or_create(person=person, period=period)
    if statement.status == StatementStatus.APPROVED:
        who = statement.approved_by.name if statement.approved_by else "finance"
        raise ApplicationError(f"{person.name}'s {period:%B %Y} statement was already approved by {who}.")
    statement.status = StatementStatus.APPROVED
    statement.approved_by = approver
    statement.approved_at = timezone.now()
    statement.approved_totals = statement_totals(person=person, period=period).as_json()
    statement.save(update_fields=["status", "approved_by", "approved_at", "approved_totals"])
    emit("statement.approved", _statement_event(statement, person), team_ids=[person.team_id])
    return statement


def _statement_event(statement: Statement, person: User) -> dict:
    """The webhook payload of a statement event: who, which month, the frozen totals (strings)."""
    return {
        "statement_id": statement.pk,
        "person": {"id": person.pk, "name": person.name, "email": person.email},
        "period": f"{statement.period:%Y-%m}",
        "totals": statement.approved_totals,
        "approved_at": statement.approved_at.isoformat() if statement.approved_at else "",
        "paid_on": statement.paid_on.isoformat() if statement.paid_on else "",
        "link": f"/comp/statements/{person.pk}/{statement.period:%Y-%m}/",
    }


@transaction.atomic
def inquiry_raise(*, line: LedgerLine, person: User, body: str, submission: uuid.UUID | None = None) -> Inquiry:
    """``person`` asks about one of their own lines. A question on a line that already has
    an open inquiry joins that thread instead of starting another. The same form sent twice
    (``submission``, its one-time token) raises ``AlreadySubmitted`` the second time."""
    if line.person_id != person.pk:
        raise ApplicationError("Only the person a line pays can raise an inquiry on it.")
    text = _body(body)
    first_submission(submission, user=person)
    inquiry = (
        Inquiry.objects.select_for_update().filter(line=line, status=Inquiry.Status.OPEN).order_by("created_at").first()
    )
    if inquiry is None:
        inquiry = Inquiry.objects.create(line=line, raised_by=person)
    InquiryMessage.objects.create(inquiry=inquiry, author=person, body=text)
    return inquiry


MAX_ADJUSTMENT = Decimal(10) ** 9


def parse_adjustment(value: str | Decimal | None) -> Decimal | None:
    """'' → None; '-150.5' → Decimal('-150.50'); ApplicationError for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", "").replace("$", "").replace("−", "-"))
    except InvalidOperation:
        raise ApplicationError(f"'{value}' is not an amount (for example 150.00 or -75.50).") from None
    if not amount.is_finite():
        raise ApplicationError(f"'{value}' is not an amount (for example 150.00 or -75.50).")
    if abs(amount) >= MAX_ADJUSTMENT:
        raise ApplicationError(f"An adjustment must be less than ${MAX_ADJUSTMENT:,} either way.")
    if amount != amount.quantize(CENT):
        raise ApplicationError("An adjustment is in dollars and cents: at most 2 decimal places.")
    return amount.quantize(CENT)


@transaction.atomic
def inquiry_answer(*, inquiry: Inquiry, author: User, body: str, adjustment: Decimal | None = None) -> InquiryMessage:
    """Finance answers an inquiry, optionally with an adjustment for the line's person.

    The adjustment lands in the line's month if that statement is still open, else in the
    first open month after it (an approved statement never changes).
    """
    if not is_finance(author):
        raise ApplicationError("Only finance can answer inquiries.")
    text = _body(body)
    inquiry = Inquiry.objects.select_for_update().select_related("line__person").get(pk=inquiry.pk)
    if inquiry.status == Inquiry.Status.ANSWERED:
        raise ApplicationError("This inquiry has already been answered; the person can raise a new one.")
    line = inquiry.line
    adjustment_line = None
    if adjustment is not None:
        if adjustment == 0:
            raise ApplicationError("An adjustment of 0 changes nothing; leave the amount empty to answer without one.")
        if abs(adjustment) >= MAX_ADJUSTMENT:
            raise ApplicationError(f"An adjustment must be under ${MAX_ADJUSTMENT:,.0f}.")
        # Lock the person's statements so an approval cannot slip in between choosing the
        # month and writing the line.
        list(Statement.objects.select_for_update().filter(person_id=line.person_id).values_list("pk"))
        frozen = approved_periods([line.person_id]).get(line.person_id, set())
        period = open_period(line.period, frozen)
        adjustment_line = LedgerLine.objects.create(
            person_id=line.person_id,
            period=period,
            plan_version_id=line.plan_version_id,
            account_id=line.account_id,
            kind=LineKind.ADJUSTMENT,
            key=f"inquiry:{inquiry.pk}:adjustment",
            amount=adjustment,
            inputs={
                "formula": f"{adjustment:,.2f} set by finance answering inquiry #{inquiry.pk}",
                "inquiry": inquiry.pk,
                "line": line.pk,
                "line_period": line.period.isoformat(),
                "reason": text,
            },
            explanation=(
                f"Finance ({author.name}) adjusted your pay by {_money(adjustment)} in answer to your inquiry on the "
                f"{line.get_kind_display().lower()} line of {line.period:%B %Y}: {text}"
            ),
            created_by=author,
        )
    message = InquiryMessage.objects.create(inquiry=inquiry, author=author, body=text, adjustment=adjustment_line)
    inquiry.status = Inquiry.Status.ANSWERED
    inquiry.save(update_fields=["status"])
    return message


def _money(amount: Decimal) -> str:
    text = f"${abs(amount):,.2f}"
    return f"−{text}" if amount < 0 else text


# --- The monthly close: approve what is ready, record payment, hand payroll its file --------


@dataclass(frozen=True)
class BulkApproval:
    approved: list
    with_inquiries: list
    already: int


def statements_approve_pending(*, viewer: User, period: dt.date, team_id: int | None = None) -> BulkApproval:
    """Approve every statement of ``period`` in ``viewer``'s scope (or one team) that is
    pending and has no open inquiry; those with one are left for finance to answer first."""
    from comp.selectors import statements_list

    if not is_finance(viewer):
        raise ApplicationError("Only finance can approve statements.")
    rows = [
        r
        for r in statements_list(viewer=viewer, period=month_start(period))
        if team_id is None or r.person.team_id == team_id
    ]
    approved, waiting = [], []
    with transaction.atomic():
        for row in rows:
            if row.approved:
                continue
            if row.open_inquiries:
                waiting.append(row.person)
                continue
            statement_approve(person=row.person, period=row.period, approver=viewer)
            approved.append(row.person)
    return BulkApproval(approved=approved, with_inquiries=waiting, already=sum(1 for r in rows if r.approved))


@transaction.atomic
def statements_mark_paid(*, viewer: User, period: dt.date, paid_on: dt.date) -> int:
    """Record that payroll paid every approved statement of ``period`` in scope, on ``paid_on``.
    A paid month, like an approved one, only changes through next month's adjustment lines."""
    from revops.access import people_in_scope

    if not is_finance(viewer):
        raise ApplicationError("Only finance records payment.")
    period = month_start(period)
    if paid_on < add_months(period, 1):
        raise ApplicationError(f"{period:%B %Y} is paid after it ends: choose a day from {add_months(period, 1)}.")
    if paid_on > today_utc():
        raise ApplicationError("A payment is recorded once it is made: the day cannot be in the future.")
    statements = list(
        Statement.objects.select_for_update(of=("self",))
        .select_related("person")
        .filter(
            period=period, status=StatementStatus.APPROVED, paid_on__isnull=True, person__in=people_in_scope(viewer)
        )
        .order_by("pk")
    )
    paid = Statement.objects.filter(pk__in=[s.pk for s in statements]).update(paid_on=paid_on, paid_by=viewer)
    for statement in statements:
        statement.paid_on = paid_on
    emit_many("statement.paid", [(_statement_event(s, s.person), [s.person.team_id]) for s in statements])
    return paid


PAYROLL_KINDS = [kind for kind in LineKind.values if kind != LineKind.HOLD]


def payroll_rows(*, viewer: User, period: dt.date) -> list[dict]:
    """The payroll file of ``period``: one row per paid statement in scope, with the amount of
    each kind of line and the total, from the ledger (to the cent), in USD."""
    from django.db.models import Sum

    from revops.access import people_in_scope

    period = month_start(period)
    statements = list(
        Statement.objects.filter(
            period=period, status=StatementStatus.APPROVED, paid_on__isnull=False, person__in=people_in_scope(viewer)
        )
        .select_related("person")
        .order_by("person__name", "person_id")
    )
    sums: dict[tuple[int, str], Decimal] = {
        (row["person_id"], row["kind"]): row["total"]
        for row in LedgerLine.objects.filter(period=period, person_id__in=[s.person_id for s in statements])
        .exclude(kind=LineKind.HOLD)
        .values("person_id", "kind")
        .annotate(total=Sum("amount"))
    }
    rows = []
    for statement in statements:
        person = statement.person
        amounts = {kind: sums.get((person.pk, kind), Decimal("0.00")) for kind in PAYROLL_KINDS}
        rows.append(
            {
                "person": person.name,
                "email": person.email,
                "employee_id": person.employee_id,
                "period": f"{period:%Y-%m}",
                **amounts,
                "total": sum(amounts.values(), Decimal("0.00")),
                "currency": "USD",
                "paid_on": statement.paid_on.isoformat(),
            }
        )
    return rows
