"""Reads over the ledger: a person's statement for a month, and the month's statements list.

A statement is computed from the ledger every time it is read (the ledger is the record;
``Statement`` only carries the approval), in a fixed number of queries whatever the
number of lines: the month's lines with their accounts and inquiries, one aggregate
over the person's ledger for the running balances, the attainment rows and the approval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from comp.models import (
    PAYABLE_KINDS,
    Assignment,
    Attainment,
    Inquiry,
    LedgerLine,
    LineKind,
    Statement,
    StatementStatus,
)
from comp.periods import month_end
from revops.access import people_in_scope
from revops.models import User

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

# The order kinds are shown in: money earned, then money kept back or taken back.
KIND_ORDER: tuple[str, ...] = (
    LineKind.COMMISSION,
    LineKind.ACCELERATOR,
    LineKind.SPIFF,
    LineKind.BONUS,
    LineKind.TRUE_UP,
    LineKind.RELEASE,
    LineKind.ADJUSTMENT,
    LineKind.DRAW,
    LineKind.DRAW_RECOVERY,
    LineKind.CLAWBACK,
    LineKind.HOLD,
)

# The totals a statement shows (and that approval snapshots), in display order.
TOTAL_LABELS: dict[str, str] = {
    "payable": "Payable this month",
    "clawbacks": "Clawbacks this month",
    "held_balance": "Held balance",
    "draw_balance": "Draw balance (recoverable)",
    "ytd": "Paid year to date",
}


class LineStatus:
    HELD = "held"
    RELEASED = "released"
    FORFEITED = "forfeited"
    APPROVED = "approved"
    PENDING = "pending approval"


def line_status(line: LedgerLine, *, approved: bool) -> str:
    """What the person should read next to a line: a hold's state, else the approval."""
    if line.kind == LineKind.HOLD:
        if line.amount < 0:
            return LineStatus.FORFEITED if (line.inputs or {}).get("outcome") == "forfeited" else LineStatus.RELEASED
        return LineStatus.HELD
    return LineStatus.APPROVED if approved else LineStatus.PENDING


@dataclass(frozen=True)
class Totals:
    payable: Decimal = ZERO
    clawbacks: Decimal = ZERO
    held_balance: Decimal = ZERO
    draw_balance: Decimal = ZERO
    ytd: Decimal = ZERO

    def as_json(self) -> dict[str, str]:
        return {name: str(getattr(self, name).quantize(CENT)) for name in TOTAL_LABELS}

    @classmethod
    def from_json(cls, data: dict) -> Totals:
        return cls(**{name: Decimal(data.get(name, "0.00")) for name in TOTAL_LABELS})

    def labelled(self) -> list[tuple[str, str, Decimal]]:
        return [(name, label, getattr(self, name)) for name, label in TOTAL_LABELS.items()]


@dataclass
class LineRow:
    line: LedgerLine
    status: str
    inquiries: list[Inquiry]

    @property
    def open_inquiry(self) -> bool:
        return any(i.status == Inquiry.Status.OPEN for i in self.inquiries)


@dataclass
class KindGroup:
    kind: str
    label: str
    rows: list[LineRow]  # the lines listed: all of them, or the first ones and every one with an inquiry
    total: Decimal  # of every line of the kind, listed or not
    payable: bool
    line_count: int = 0  # every line of the kind

    @property
    def hidden(self) -> int:
        return self.line_count - len(self.rows)


@dataclass
class StatementView:
    person: User
    period: dt.date
    statement: Statement | None
    groups: list[KindGroup]
    totals: Totals
    # The ledger's totals now; differs from ``totals`` only if an approved statement's
    # running balances were moved by a line added to an earlier, still open month.
    live_totals: Totals
    attainments: list[Attainment]
    line_count: int = 0
    open_inquiries: int = 0
    rows_by_id: dict[int, LineRow] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return self.statement is not None and self.statement.status == StatementStatus.APPROVED

    @property
    def status_label(self) -> str:
        return "Approved" if self.approved else "Open"


def _sum(condition: Q) -> Coalesce:
    return Coalesce(
        Sum("amount", filter=condition), Value(ZERO), output_field=DecimalField(max_digits=16, decimal_places=2)
    )


def _recoverable_draws() -> Q:
    # Recoverable draws and what has been recovered of them; a guaranteed (non-recoverable)
    # draw is simply pay.
    return Q(kind=LineKind.DRAW, inputs__recoverable=True) | Q(kind=LineKind.DRAW_RECOVERY)


def statement_totals(*, person: User | int, period: dt.date) -> Totals:
    """The month's totals from the ledger, in one aggregate query.

    payable: Σ this month's payable lines (holds are memos, not pay); clawbacks: Σ this
    month's clawback lines (negative); held balance: Σ hold lines up to the month;
    draw balance: Σ recoverable draws and draw recoveries up to the month; YTD: Σ
    payable lines from January to the month.
    """
    up_to = Q(period__lte=period)
    this_month = Q(period=period)
    row = LedgerLine.objects.filter(person=person, period__lte=period).aggregate(
        payable=_sum(this_month & Q(kind__in=PAYABLE_KINDS)),
        clawbacks=_sum(this_month & Q(kind=LineKind.CLAWBACK)),
        held_balance=_sum(up_to & Q(kind=LineKind.HOLD)),
        draw_balance=_sum(up_to & _recoverable_draws()),
        ytd=_sum(Q(period__gte=period.replace(month=1)) & Q(kind__in=PAYABLE_KINDS)),
    )
    return Totals(**row)


def statement_view(*, person: User, period: dt.date, limit: int | None = None) -> StatementView:
    """Everything the statement page, its CSV and the API show for ``person``'s month.

    ``limit``: list at most the first ``limit`` lines of each kind (by id) and every line with
    an inquiry; group totals and counts still cover every line (an AE with a big book has
    thousands of lines a month: the page lists some, the CSV and the API all).
    """
    statement = Statement.objects.select_related("approved_by").filter(person=person, period=period).first()
    approved = statement is not None and statement.status == StatementStatus.APPROVED
    month_lines = LedgerLine.objects.filter(person=person, period=period)
    listed = month_lines.select_related("account").prefetch_related(
        Prefetch("inquiries", queryset=Inquiry.objects.order_by("created_at", "id"), to_attr="inquiry_list")
    )
    if limit is None:
        lines = list(listed.order_by("id"))
    else:
        first = month_lines.annotate(place=Window(RowNumber(), partition_by=F("kind"), order_by=F("id").asc())).filter(
            place__lte=limit
        )
        asked = month_lines.filter(Exists(Inquiry.objects.filter(line=OuterRef("pk"))))
        ids = set(first.values_list("id", flat=True).union(asked.values_list("id", flat=True)))
        lines = list(listed.filter(id__in=ids).order_by("id"))
    per_kind = {
        row["kind"]: row for row in month_lines.order_by().values("kind").annotate(n=Count("id"), total=Sum("amount"))
    }
    live = statement_totals(person=person, period=period)
    totals = Totals.from_json(statement.approved_totals) if approved and statement.approved_totals else live
    attainments = list(
        Attainment.objects.filter(person=person, period=period)
        .select_related("assignment__plan", "plan_version")
        .order_by("assignment__plan__name", "id")
    )

    by_kind: dict[str, list[LineRow]] = {}
    rows_by_id: dict[int, LineRow] = {}
    for line in lines:
        row = LineRow(line=line, status=line_status(line, approved=approved), inquiries=line.inquiry_list)
        by_kind.setdefault(line.kind, []).append(row)
        rows_by_id[line.pk] = row
    labels = dict(LineKind.choices)
    groups = [
        KindGroup(
            kind=kind,
            label=labels[kind],
            rows=by_kind.get(kind, []),
            total=per_kind[kind]["total"],
            payable=kind in PAYABLE_KINDS,
            line_count=per_kind[kind]["n"],
        )
        for kind in KIND_ORDER
        if kind in per_kind
    ]
    return StatementView(
        person=person,
        period=period,
        statement=statement,
        groups=groups,
        totals=totals,
        live_totals=live,
        attainments=attainments,
        line_count=sum(row["n"] for row in per_kind.values()),
        # Every line with an inquiry is listed, so their count is complete.
        open_inquiries=sum(1 for r in rows_by_id.values() for i in r.inquiries if i.status == Inquiry.Status.OPEN),
        rows_by_id=rows_by_id,
    )


def line_detail(*, line_id: int, visible_people: QuerySet[User]) -> LedgerLine | None:
    """One line with its account, person and inquiry threads, if its person is visible."""
    messages = Prefetch("messages", queryset=_messages())
    inquiries = Prefetch(
        "inquiries",
        queryset=Inquiry.objects.select_related("raised_by").prefetch_related(messages).order_by("created_at", "id"),
        to_attr="inquiry_list",
    )
    return (
        LedgerLine.objects.select_related("account", "person", "plan_version__plan")
        .prefetch_related(inquiries)
        .filter(pk=line_id, person__in=visible_people)
        .first()
    )


def _messages():
    from comp.models import InquiryMessage

    return InquiryMessage.objects.select_related("author", "adjustment").order_by("created_at", "id")


def statement_approved(*, person: User | int, period: dt.date) -> bool:
    return Statement.objects.filter(person=person, period=period, status=StatementStatus.APPROVED).exists()


# --- Lists -------------------------------------------------------------------------------


@dataclass
class MonthRow:
    """One row of a statements list: a person's month (or one of a person's months)."""

    person: User
    period: dt.date
    payable: Decimal
    held: Decimal
    lines: int
    open_inquiries: int
    status: str
    approved_by: str
    approved_at: dt.datetime | None
    paid_on: dt.date | None = None

    @property
    def approved(self) -> bool:
        return self.status == StatementStatus.APPROVED


def _month_sum(condition: Q) -> Subquery:
    rows = (
        LedgerLine.objects.filter(condition, person=OuterRef("pk"))
        .order_by()
        .values("person")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(rows), Value(ZERO), output_field=DecimalField(max_digits=16, decimal_places=2))


def statements_list(*, viewer: User, period: dt.date) -> list[MonthRow]:
    """People in ``viewer``'s scope who have a statement for the month (lines, an approval
    or a comp assignment covering it), with the month's totals and status; one query."""
    month_lines = Q(period=period)
    statements = Statement.objects.filter(person=OuterRef("pk"), period=period)
    assigned = Assignment.objects.filter(person=OuterRef("pk"), start_on__lte=month_end(period)).filter(
        Q(end_on__isnull=True) | Q(end_on__gte=period)
    )
    people = (
        User.objects.filter(pk__in=people_in_scope(viewer).values("pk"))
        .annotate(
            payable=_month_sum(month_lines & Q(kind__in=PAYABLE_KINDS)),
            held=_month_sum(month_lines & Q(kind=LineKind.HOLD)),
            n_lines=Subquery(
                LedgerLine.objects.filter(person=OuterRef("pk"), period=period)
                .order_by()
                .values("person")
                .annotate(n=Count("pk"))
                .values("n")
            ),
            n_open=Subquery(
                Inquiry.objects.filter(line__person=OuterRef("pk"), line__period=period, status=Inquiry.Status.OPEN)
                .order_by()
                .values("line__person")
                .annotate(n=Count("pk"))
                .values("n")
            ),
            status=Subquery(statements.values("status")[:1]),
            approved_at=Subquery(statements.values("approved_at")[:1]),
            paid_on=Subquery(statements.values("paid_on")[:1]),
            approved_by_name=Subquery(statements.values("approved_by__name")[:1]),
            has_lines=Exists(LedgerLine.objects.filter(person=OuterRef("pk"), period=period)),
            has_statement=Exists(statements),
            is_assigned=Exists(assigned),
        )
        .filter(Q(has_lines=True) | Q(has_statement=True) | Q(is_assigned=True))
        .select_related("team")
        .order_by("name", "pk")
    )
    return [
        MonthRow(
            person=p,
            period=period,
            payable=p.payable,
            held=p.held,
            lines=p.n_lines or 0,
            open_inquiries=p.n_open or 0,
            status=p.status or StatementStatus.OPEN,
            approved_by=p.approved_by_name or "",
            approved_at=p.approved_at,
            paid_on=p.paid_on,
        )
        for p in people
    ]


def my_statements(*, person: User, limit: int = 24) -> list[MonthRow]:
    """``person``'s months that have lines or a statement, newest first, with totals; three queries."""
    sums = (
        LedgerLine.objects.filter(person=person)
        .values("period")
        .annotate(
            payable=_sum(Q(kind__in=PAYABLE_KINDS)),
            held=_sum(Q(kind=LineKind.HOLD)),
            n=Count("pk"),
        )
        .order_by("-period")[:limit]
    )
    months = {row["period"]: row for row in sums}
    open_inquiries = dict(
        Inquiry.objects.filter(line__person=person, status=Inquiry.Status.OPEN)
        .values("line__period")
        .annotate(n=Count("pk"))
        .values_list("line__period", "n")
        .order_by()
    )
    statements = {
        s.period: s
        for s in Statement.objects.filter(person=person).select_related("approved_by").order_by("-period")[:limit]
    }
    rows = []
    for period in sorted(set(months) | set(statements), reverse=True)[:limit]:
        row = months.get(period, {})
        statement = statements.get(period)
        rows.append(
            MonthRow(
                person=person,
                period=period,
                payable=row.get("payable", ZERO),
                held=row.get("held", ZERO),
                lines=row.get("n", 0),
                open_inquiries=open_inquiries.get(period, 0),
                status=statement.status if statement else StatementStatus.OPEN,
                approved_by=statement.approved_by.name if statement and statement.approved_by else "",
                approved_at=statement.approved_at if statement else None,
                paid_on=statement.paid_on if statement else None,
            )
        )
    return rows
