"""Statement pages: the list, one person's month, a line's explanation and thread, the CSV.

Every URL fetches the person or line through ``people_in_scope``: someone outside the
viewer's scope is a 404 on the page, its fragments, its CSV and its forms alike. Finance
(and admins) approve and answer; the line's own person raises inquiries.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from comp import selectors, services
from comp.cs_outlook import has_cs_plan
from comp.models import Inquiry, LedgerLine
from comp.outlook import pay_timeline
from comp.periods import add_months, month_start, parse_period
from revops.access import people_in_scope, sees_company, teams_managed_by
from revops.clock import today_utc, yesterday_utc
from revops.errors import ApplicationError
from revops.idempotency import AlreadySubmitted, token_from
from revops.models import Role, User
from revops.params import whole_number
from revops.tabular import spreadsheet_safe


def _period(value: str) -> dt.date:
    try:
        return parse_period(value)
    except ValueError:
        raise Http404("No such month.") from None


def _person_for(request: HttpRequest, person_id: int) -> User:
    """The person if the viewer may see their statements, else 404 (like an unknown one)."""
    person = people_in_scope(request.user).filter(pk=person_id).select_related("team").first()
    if person is None:
        raise Http404("No such statement.")
    return person


def _line_for(request: HttpRequest, line_id: int) -> LedgerLine:
    line = selectors.line_detail(line_id=line_id, visible_people=people_in_scope(request.user))
    if line is None:
        raise Http404("No such line.")
    return line


def _statement_url(person_id: int, period: dt.date) -> str:
    return reverse("comp:statement", args=[person_id, f"{period:%Y-%m}"])


def _sees_others(user: User) -> bool:
    return sees_company(user) or teams_managed_by(user).exists()


# --- The list ----------------------------------------------------------------------------


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """My statements by month; for finance, leaders and managers the month's statements of
    everyone in scope (with approve buttons for finance)."""
    user = request.user
    context: dict = {"mine": selectors.my_statements(person=user), "is_finance": services.is_finance(user)}
    # A CS bonus is paid when its period closes: until then, its outlook is what there is.
    context["cs_outlook"] = user.role == Role.CSM and has_cs_plan(user, yesterday_utc())
    if _sees_others(user):
        try:
            period = parse_period(request.GET["period"]) if request.GET.get("period") else month_start(today_utc())
        except ValueError:
            period = month_start(today_utc())
        rows = selectors.statements_list(viewer=user, period=period)
        ends_on = add_months(period, 1)
        context.update(
            period=period,
            rows=rows,
            previous=add_months(period, -1),
            next=add_months(period, 1),
            sees_others=True,
            ended=ends_on <= today_utc(),
            ends_on=ends_on,
            board={
                "people": len(rows),
                "approved": sum(1 for r in rows if r.approved),
                "pending": sum(1 for r in rows if not r.approved and not r.open_inquiries),
                "with_inquiries": sum(1 for r in rows if not r.approved and r.open_inquiries),
                "paid": sum(1 for r in rows if r.paid_on),
                "payable": sum((r.payable for r in rows), start=selectors.ZERO),
            },
            today=today_utc(),
        )
    template = "comp/statements.html#statement-list" if request.htmx and context.get("sees_others") else None
    return render(request, template or "comp/statements.html", context)


# --- One statement -----------------------------------------------------------------------


# Lines of a kind a statement page lists before "show all" (the CSV always has every line).
STATEMENT_LINES_SHOWN = 50


def _statement_context(request: HttpRequest, person: User, period: dt.date) -> dict:
    limit = None if request.GET.get("lines") == "all" else STATEMENT_LINES_SHOWN
    view = selectors.statement_view(person=person, period=period, limit=limit)
    return {
        "s": view,
        "person": person,
        "period": period,
        "period_str": f"{period:%Y-%m}",
        "is_finance": services.is_finance(request.user),
        "is_own": person.pk == request.user.pk,
        # Their own statement points at what is still to come: a CSM's bonus outlook.
        "cs_outlook": person.pk == request.user.pk and person.role == Role.CSM and has_cs_plan(person, yesterday_utc()),
        "previous": add_months(period, -1),
        "next": add_months(period, 1),
        "ended": add_months(period, 1) <= today_utc(),
        "ends_on": add_months(period, 1),
    }


@require_GET
def statement(request: HttpRequest, person_id: int, period: str) -> HttpResponse:
    person = _person_for(request, person_id)
    context = _statement_context(request, person, _period(period))
    return render(request, "comp/statement.html", context)


@require_GET
def statement_csv(request: HttpRequest, person_id: int, period: str) -> HttpResponse:
    person = _person_for(request, person_id)
    view = selectors.statement_view(person=person, period=_period(period))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"statement-{person.email.split('@')[0]}-{view.period:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{spreadsheet_safe(name)}"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "person",
            "email",
            "period",
            "statement_status",
            "line_id",
            "kind",
            "account",
            "account_external_id",
            "amount",
            "line_status",
            "formula",
            "explanation",
            "inputs",
        ]
    )
    for group in view.groups:
        for row in group.rows:
            line = row.line
            writer.writerow(
                [
                    spreadsheet_safe(person.name),
                    spreadsheet_safe(person.email),
                    f"{view.period:%Y-%m}",
                    view.status_label.lower(),
                    line.pk,
                    line.kind,
                    spreadsheet_safe(line.account.name if line.account else ""),
                    spreadsheet_safe(line.account.external_id if line.account else ""),
                    line.amount,
                    row.status,
                    spreadsheet_safe((line.inputs or {}).get("formula", "")),
                    spreadsheet_safe(line.explanation),
                    spreadsheet_safe(json.dumps(line.inputs, sort_keys=True, default=str)),
                ]
            )
    for name, _label, amount in view.totals.labelled():
        writer.writerow(
            ["", "", f"{view.period:%Y-%m}", view.status_label.lower(), "", f"total:{name}", "", "", amount]
        )
    return response


@require_POST
def approve(request: HttpRequest, person_id: int, period: str) -> HttpResponse:
    """Finance approves a statement. From the statement page htmx gets the new status with
    the totals and lines out of band; from the list, the list's row."""
    person = _person_for(request, person_id)
    month = _period(period)
    if not services.is_finance(request.user):
        raise PermissionDenied("Only finance approves statements.")
    try:
        services.statement_approve(person=person, period=month, approver=request.user)
    except ApplicationError as exc:
        if request.htmx:
            return _htmx_error(request, exc.message)
        messages.error(request, exc.message)
        return redirect(_statement_url(person.pk, month))
    messages.success(request, f"{person.name}'s {month:%B %Y} statement is approved.")
    if not request.htmx:
        target = request.POST.get("next", "")
        safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False)
        return redirect(target if target and safe else _statement_url(person.pk, month))
    if request.POST.get("from") == "list":
        rows = [r for r in selectors.statements_list(viewer=request.user, period=month) if r.person.pk == person.pk]
        return render(request, "comp/statements.html#list-row", {"row": rows[0], "is_finance": True, "period": month})
    context = _statement_context(request, person, month)
    context["oob"] = True
    return render(request, "comp/statement.html#approved-response", context)


def _htmx_error(request: HttpRequest, message: str) -> HttpResponse:
    response = render(request, "comp/statement.html#flash", {"error": message})
    response["HX-Retarget"] = "#statement-flash"
    response["HX-Reswap"] = "innerHTML"
    return response


# --- A line: explanation, inputs, thread ---------------------------------------------------


def _line_context(request: HttpRequest, line: LedgerLine, *, error: str = "", body: str = "") -> dict:
    inputs = line.inputs or {}
    approved = selectors.statement_approved(person=line.person_id, period=line.period)
    return {
        "line": line,
        "status": selectors.line_status(line, approved=approved),
        "formula": inputs.get("formula", ""),
        "inputs": labelled_inputs(inputs),
        "inquiries": line.inquiry_list,
        "open_inquiry": any(i.status == Inquiry.Status.OPEN for i in line.inquiry_list),
        "can_raise": line.person_id == request.user.pk,
        "is_finance": services.is_finance(request.user),
        "error": error,
        "body": body,
        "statement_url": _statement_url(line.person_id, line.period),
        "usage_links": usage_links(line),
    }


# Inputs that name a day whose burn (the 30 days ending it) or usage decided the line.
USAGE_DAYS = (
    ("checkpoint", "The 30 days of usage behind the checkpoint's burn", 30),
    ("released_on", "The 30 days of usage behind the release", 30),
    ("clawback_day", "The 30 days of usage behind the clawback's burn", 30),
    ("first_seen", "The day it was first seen", 1),
)


def usage_links(line: LedgerLine) -> list[tuple[str, str]]:
    """Links to the usage days a line's figures came from (none for a line with no account)."""
    if line.account_id is None:
        return []
    inputs, links = line.inputs or {}, []
    for key, label, days in USAGE_DAYS:
        try:
            day = dt.date.fromisoformat(str(inputs.get(key, "")))
        except ValueError:
            continue
        url = reverse("usage:account_days", args=[line.account.external_id])
        links.append((f"{label} ({day})", f"{url}?through={day}&days={days}"))
    return links


# How each input a comp line records reads: its label and its kind of value. Ids are the
# system's, not the reader's, and are left out.
_MONEY = "money"
_FRACTION = "fraction"
INPUT_FORMATS: dict[str, tuple[str, str]] = {
    "committed_arr": ("Committed ARR", _MONEY),
    "previous_committed_arr": ("Previous committed ARR", _MONEY),
    "quota": ("Quota", _MONEY),
    "effective_quota": ("Quota after ramp relief", _MONEY),
    "tcv": ("TCV", _MONEY),
    "target_bonus": ("Target bonus", _MONEY),
    "run_rate_at_checkpoint": ("Run rate at the checkpoint", _MONEY),
    "revenue_in_window": ("Revenue in the window", _MONEY),
    "revenue_before": ("Revenue before", _MONEY),
    "payout": ("Payout", _MONEY),
    "outstanding_after": ("Outstanding after", _MONEY),
    "net_new_arr": ("Net-new ARR", _MONEY),
    "earnings": ("Earnings", _MONEY),
    "gated_paid": ("Paid at the gates so far", _MONEY),
    "incremental_arr": ("Incremental ARR", _MONEY),
    "credit": ("Quota credit", _MONEY),
    "credit_above": ("Credit above quota", _MONEY),
    "credited_before": ("Credited before", _MONEY),
    "recoverable": ("Recoverable", _MONEY),
    "share": ("Share of the commission", _FRACTION),
    "ramp_share": ("Ramp relief (share of quota)", _FRACTION),
    "base_rate": ("Base rate", _FRACTION),
    "rate": ("Rate", _FRACTION),
    "burn_floor": ("Burn floor", _FRACTION),
    "clawback_floor": ("Clawback floor", _FRACTION),
    "burn_at_checkpoint": ("Burn at the checkpoint", _FRACTION),
    "burn_at_release": ("Burn at release", _FRACTION),
    "burn_at_clawback": ("Burn at the clawback", _FRACTION),
    "pilot_growth": ("Pilot accounts' growth", _FRACTION),
    "comparable_growth": ("Comparable accounts' growth", _FRACTION),
    "nrr": ("Book NRR", _FRACTION),
    "multiplier": ("Multiplier", "multiple"),
    "days": ("Days", "days"),
    "credited_days": ("Days credited", "days"),
    "split_days": ("Days to the credit split", "days"),
    "start_on": ("Contract start", "date"),
    "signed_on": ("Signed", "date"),
    "released_on": ("Released on", "date"),
    "recheck_until": ("Rechecked until", "date"),
    "first_seen": ("First seen", "date"),
    "clawback_day": ("Clawback day", "date"),
}
HIDDEN_INPUTS = frozenset({"formula", "plan_version_id", "person_id", "account_id", "inquiry", "line"})


def labelled_inputs(inputs: dict) -> list[tuple[str, str]]:
    """A line's inputs as the person reads them: "Share of the commission 50.0%", "Committed
    ARR $32,000", dates and days in words; never field keys, ids or raw fractions."""
    from revops.templatetags.fmt import money, pct

    rows = []
    for key, value in inputs.items():
        if key.startswith("_") or key in HIDDEN_INPUTS:
            continue
        label, kind = INPUT_FORMATS.get(key, (key.replace("_", " ").capitalize(), "text"))
        text = _input_value(value)
        if value not in (None, "") and not isinstance(value, bool | dict | list):
            try:
                number = Decimal(str(value).replace(",", "").lstrip("$"))
            except (InvalidOperation, ValueError):
                number = None
            if kind == _MONEY and number is not None:
                text = money(number, 0 if number == number.to_integral_value() else 2)
            elif kind == _FRACTION and number is not None:
                text = pct(number)
            elif kind == "multiple" and number is not None:
                text = f"{number.normalize():f}×"
            elif kind == "days" and number is not None:
                text = f"{number:f} day{'s' if number != 1 else ''}"
        rows.append((label, text))
    return rows


def _input_value(value) -> str:
    """An input as the person reads it: yes/no, plain numbers and text, JSON for the rest."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


@require_GET
def line(request: HttpRequest, line_id: int) -> HttpResponse:
    """The line's explanation, loaded into the statement when its row is opened; without
    htmx a page of its own."""
    item = _line_for(request, line_id)
    template = "comp/statement.html#line-detail" if request.htmx else "comp/statement_line.html"
    return render(request, template, _line_context(request, item))


def _line_response(request: HttpRequest, line_id: int, *, error: str = "", body: str = "", totals=False):
    item = _line_for(request, line_id)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(reverse("comp:line", args=[line_id]))
    context = _line_context(request, item, error=error, body=body)
    context["summary_oob"] = True  # the row's inquiry tag follows the thread
    if totals:
        view = selectors.statement_view(person=item.person, period=item.period)
        context.update(
            s=view,
            oob=True,
            person=item.person,
            period=item.period,
            period_str=f"{item.period:%Y-%m}",
            ended=add_months(item.period, 1) <= today_utc(),
            ends_on=add_months(item.period, 1),
        )
    return render(request, "comp/statement.html#line-response", context)


@require_POST
def inquiry_raise(request: HttpRequest, line_id: int) -> HttpResponse:
    item = _line_for(request, line_id)
    body = request.POST.get("body", "")
    try:
        services.inquiry_raise(line=item, person=request.user, body=body, submission=token_from(request.POST))
    except AlreadySubmitted:
        # The first of two identical posts sent it: say so, and show the line as it now is.
        messages.info(request, "That inquiry was already sent to finance; it is on the line below.")
        return _line_response(request, line_id, totals=True)
    except ApplicationError as exc:
        return _line_response(request, line_id, error=exc.message, body=body[:4000])
    messages.success(request, "Your inquiry is with finance; the answer will appear on the line.")
    return _line_response(request, line_id, totals=True)


@require_POST
def inquiry_answer(request: HttpRequest, inquiry_id: int) -> HttpResponse:
    inquiry = (
        Inquiry.objects.filter(pk=inquiry_id, line__person__in=people_in_scope(request.user))
        .select_related("line")
        .first()
    )
    if inquiry is None:
        raise Http404("No such inquiry.")
    if not services.is_finance(request.user):
        raise PermissionDenied("Only finance answers inquiries.")
    body = request.POST.get("body", "")
    try:
        amount = services.parse_adjustment(request.POST.get("adjustment", ""))
        services.inquiry_answer(inquiry=inquiry, author=request.user, body=body, adjustment=amount)
    except ApplicationError as exc:
        return _line_response(request, inquiry.line_id, error=exc.message, body=body[:4000])
    messages.success(request, f"Answered {inquiry.raised_by.name}'s inquiry.")
    return _line_response(request, inquiry.line_id, totals=True)


# --- The estimator -------------------------------------------------------------------------


@require_GET
def estimator(request: HttpRequest, person_id: int) -> HttpResponse:
    """What the AE's land deals will pay, hold or take back, and on which statement, if
    today's burn holds: their own only (a forecast of someone else's pay is not theirs
    to see)."""
    if person_id != request.user.pk:
        raise Http404("No such estimator.")
    as_of = yesterday_utc()
    timeline = pay_timeline(person=request.user, as_of=as_of)
    recorded = selectors.statement_totals(person=request.user, period=month_start(as_of))
    context = {"timeline": timeline, "as_of": as_of, "person": request.user, "recorded": recorded}
    template = "comp/statement.html#estimator" if request.htmx else "comp/statement_estimator.html"
    return render(request, template, context)


# --- The monthly close ------------------------------------------------------------------------


def _close_period(request: HttpRequest) -> dt.date | None:
    """The posted month, or None after saying what is wrong with it."""
    try:
        return parse_period(request.POST.get("period", ""))
    except ValueError:
        messages.error(request, "Choose the month to close (YYYY-MM).")
        return None


@require_POST
def approve_month(request: HttpRequest) -> HttpResponse:
    """Finance approves every pending statement of a month without an open inquiry."""
    if not services.is_finance(request.user):
        raise PermissionDenied("Only finance approves statements.")
    period = _close_period(request)
    if period is None:
        return redirect("comp:statements")
    team = whole_number(request.POST.get("team", ""))
    try:
        result = services.statements_approve_pending(viewer=request.user, period=period, team_id=team)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        said = f"Approved {len(result.approved)} {period:%B %Y} statement{'s' if len(result.approved) != 1 else ''}."
        if result.with_inquiries:
            names = ", ".join(p.name for p in result.with_inquiries)
            said += f" Left for their open inquiries: {names}."
        messages.success(request, said)
    return redirect(f"{reverse('comp:statements')}?period={period:%Y-%m}")


@require_POST
def mark_paid(request: HttpRequest) -> HttpResponse:
    """Finance records the day payroll paid a month's approved statements."""
    if not services.is_finance(request.user):
        raise PermissionDenied("Only finance records payment.")
    period = _close_period(request)
    if period is None:
        return redirect("comp:statements")
    try:
        paid_on = dt.date.fromisoformat(request.POST.get("paid_on", ""))
    except ValueError:
        messages.error(request, "Enter the day payroll paid (YYYY-MM-DD).")
        return redirect(f"{reverse('comp:statements')}?period={period:%Y-%m}")
    try:
        count = services.statements_mark_paid(viewer=request.user, period=period, paid_on=paid_on)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{count} approved {period:%B %Y} statement{'s' if count != 1 else ''} marked paid on {paid_on}."
        )
    return redirect(f"{reverse('comp:statements')}?period={period:%Y-%m}")


@require_GET
def payroll_csv(request: HttpRequest, period: str) -> HttpResponse:
    """The payroll file of a month's paid statements (finance)."""
    if not services.is_finance(request.user):
        raise PermissionDenied("Only finance downloads the payroll file.")
    try:
        month = parse_period(period)
    except ValueError:
        raise Http404("No such month.") from None
    rows = services.payroll_rows(viewer=request.user, period=month)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payroll-{month:%Y-%m}.csv"'
    writer = csv.writer(response)
    columns = ["person", "email", "employee_id", "period", *services.PAYROLL_KINDS, "total", "currency", "paid_on"]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([spreadsheet_safe(row[c]) if isinstance(row[c], str) else f"{row[c]:.2f}" for c in columns])
    return response
