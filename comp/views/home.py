"""Comp's panels on the home page (``revops.home``): pay so far for a rep, the monthly
close for finance."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from comp import selectors
from comp.cs_outlook import cs_outlook
from comp.models import Inquiry
from comp.periods import add_months, month_start
from revops.access import people_in_scope
from revops.clock import today_utc, yesterday_utc
from revops.home import require_panel
from revops.models import Role

TEMPLATE = "comp/home.html"
CLOSE_MONTHS = 3
SHOWN = 5


@require_GET
def home_pay(request: HttpRequest) -> HttpResponse:
    """This month's statement so far and last month's status, and the rep's inquiries."""
    require_panel(request, "pay")
    person = request.user
    month = month_start(today_utc())
    last = add_months(month, -1)
    inquiries = (
        Inquiry.objects.filter(raised_by=person).select_related("line").order_by("status", "-created_at")[:SHOWN]
    )
    context = {
        "month": month,
        "totals": selectors.statement_totals(person=person, period=month),
        "last": last,
        "last_totals": selectors.statement_totals(person=person, period=last),
        "last_approved": selectors.statement_approved(person=person, period=last),
        "inquiries": list(inquiries),
        "open_inquiries": Inquiry.objects.filter(raised_by=person, status=Inquiry.Status.OPEN).count(),
        # A CSM's bonus is paid when the quota period closes: until then, the running figure.
        "cs": cs_outlook(person, yesterday_utc()) if person.role == Role.CSM else [],
    }
    return render(request, f"{TEMPLATE}#pay", context)


@require_GET
def home_close(request: HttpRequest) -> HttpResponse:
    """Open inquiries across every month, oldest first with their age, and the last closed
    months' statements awaiting approval."""
    require_panel(request, "close")
    scope = people_in_scope(request.user)
    open_inquiries = Inquiry.objects.filter(status=Inquiry.Status.OPEN, line__person__in=scope)
    oldest = list(open_inquiries.select_related("line__person", "raised_by").order_by("created_at", "pk")[:SHOWN])
    now = timezone.now()
    for inquiry in oldest:
        inquiry.age_days = (now - inquiry.created_at).days
    month = month_start(today_utc())
    months = []
    for k in range(1, CLOSE_MONTHS + 1):
        period = add_months(month, -k)
        rows = selectors.statements_list(viewer=request.user, period=period)
        pending = [r for r in rows if not r.approved]
        months.append(
            {
                "period": period,
                "people": len(rows),
                "pending": len(pending),
                "pending_payable": sum((r.payable for r in pending), start=selectors.ZERO),
                "with_inquiries": sum(1 for r in pending if r.open_inquiries),
            }
        )
    context = {"oldest": oldest, "open_count": open_inquiries.count(), "months": months, "month": month}
    return render(request, f"{TEMPLATE}#close", context)
