"""The account page's billing panel: the account's invoices, credit notes and refunds as its
billing sources (Stripe) recorded them. The shell fetches it with ``hx-get`` on load;
without htmx the same URL is a page of its own. Whoever may see the account may read it
(``account_for``: 404 otherwise)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import account_for
from accounts.selectors import BILLING_DOCUMENTS_SHOWN, account_billing

TEMPLATE = "accounts/billing.html"


@require_GET
def billing(request: HttpRequest, external_id: str) -> HttpResponse:
    account = account_for(request.user, external_id, on=timezone.localdate())
    context = {"account": account, "billing": account_billing(account=account), "shown": BILLING_DOCUMENTS_SHOWN}
    return render(request, f"{TEMPLATE}#panel" if request.htmx else TEMPLATE, context)
