"""GET /api/v1/statements: one person's statement for a month, as the statement page shows it.

Same authentication as the metrics API (a logged-in session, or a read key acting as the
person who created it) and the same scope as the pages: a person outside the caller's
scope is a 404, exactly like an unknown email.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.security import django_auth

from comp.periods import month_start, parse_period
from comp.selectors import TOTAL_LABELS, statement_view
from revops.access import people_in_scope
from revops.api_auth import ApiError, ReadKeyAuth
from usage.signals.api import ERRORS

router = Router(tags=["statements"], auth=[ReadKeyAuth(), django_auth])

MONEY_NOTE = " Money, 2 decimal places, as a string."


class TotalsOut(Schema):
    payable: str = Field(..., description=TOTAL_LABELS["payable"] + ": Σ the month's payable lines." + MONEY_NOTE)
    clawbacks: str = Field(..., description="Σ the month's clawback lines (negative)." + MONEY_NOTE)
    held_balance: str = Field(..., description="Σ hold lines up to the month: money kept back." + MONEY_NOTE)
    draw_balance: str = Field(..., description="Recoverable draw still owed at the month's end." + MONEY_NOTE)
    ytd: str = Field(..., description="Σ payable lines from January to the month." + MONEY_NOTE)


class AttainmentOut(Schema):
    plan: str
    plan_version: int
    quota_period_start: dt.date
    quota_period_end: dt.date
    credited: str
    quota: str
    ramp_share: str = Field(..., description="Share of quota after ramp relief, 4 decimal places.")
    effective_quota: str
    attainment: str | None = Field(
        None, description="credited ÷ effective quota, 4 decimal places; null without quota."
    )
    multiplier: str = Field(..., description="The tier reached (1.5 = 1.5×).")


class LineOut(Schema):
    id: int
    kind: str
    account: str | None = Field(None, description="The account's external id, or null.")
    amount: str = Field(..., description="Money, 2 decimal places, as a string; negative takes money back.")
    status: str = Field(
        ..., description="held, released or forfeited (hold lines); approved or pending_approval (the others)."
    )
    inputs: dict = Field(..., description='What produced the amount; always has "formula".')
    explanation: str


class StatementOut(Schema):
    person: str = Field(..., description="The person's email.")
    period: str = Field(..., description="YYYY-MM.")
    status: str = Field(..., description="open or approved.")
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    totals: TotalsOut = Field(..., description="As approved for an approved statement, else from the ledger now.")
    attainment: list[AttainmentOut]
    lines: list[LineOut]


def _period(value: str | None) -> dt.date:
    if not value:
        return month_start(timezone.now().astimezone(dt.UTC).date())
    try:
        return parse_period(value)
    except ValueError as exc:
        raise HttpError(400, f"period: {exc}.") from None


@router.get(
    "/statements",
    response={200: StatementOut, 404: ApiError, **ERRORS},
    summary="A person's statement for a month",
    description=(
        "The statement's lines (kind, account, amount, status, inputs), totals and attainment. "
        "AEs read their own, managers their team's, finance and leaders everyone's; anyone else is a 404."
    ),
)
def statement(
    request: HttpRequest,
    user: str | None = Query(None, description="The person's email. Default: the caller."),
    period: str | None = Query(None, description="YYYY-MM. Default: the current month (UTC)."),
):
    caller = request.auth
    month = _period(period)
    email = (user or caller.email).strip().lower()
    if "\x00" in email:
        raise HttpError(404, "No such statement.")
    person = people_in_scope(caller).filter(email__iexact=email).first()
    if person is None:
        raise HttpError(404, "No such statement.")
    view = statement_view(person=person, period=month)
    lines = [row for group in view.groups for row in group.rows]
    return {
        "person": person.email,
        "period": f"{month:%Y-%m}",
        "status": "approved" if view.approved else "open",
        "approved_by": view.statement.approved_by.email if view.approved and view.statement.approved_by else None,
        "approved_at": view.statement.approved_at if view.approved else None,
        "totals": view.totals.as_json(),
        "attainment": [
            {
                "plan": a.assignment.plan.name,
                "plan_version": a.plan_version.version,
                "quota_period_start": a.quota_period_start,
                "quota_period_end": a.quota_period_end,
                "credited": str(a.credited),
                "quota": str(a.quota),
                "ramp_share": str(a.ramp_share),
                "effective_quota": str(a.effective_quota),
                "attainment": None if a.attainment is None else str(a.attainment),
                "multiplier": str(a.multiplier),
            }
            for a in view.attainments
        ],
        "lines": [
            {
                "id": row.line.pk,
                "kind": row.line.kind,
                "account": row.line.account.external_id if row.line.account else None,
                "amount": str(row.line.amount),
                "status": row.status.replace(" ", "_"),
                "inputs": row.line.inputs or {},
                "explanation": row.line.explanation,
            }
            for row in lines
        ],
    }
