"""The real ``stripe`` client, pointed at the connection's API base, with retries and counts.

The client itself retries 409s, 5xx and connection errors (``max_network_retries``, with
backoff, and an ``Idempotency-Key`` on writes). It does not retry a 429 (Stripe sends no
``Stripe-Should-Retry`` on rate limits), so ``Stripe.call`` waits those out with the CRM
connectors' backoff (``CRM_RETRY_*``). Each HTTP attempt is counted, so a run's log says
how many requests it made and how many were retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from integrations.clients.base import RateLimited, Retrier, parse_retry_after
from revops.errors import ApplicationError

if TYPE_CHECKING:
    import stripe

# The stripe package (~26 MB resident) is imported when a connection is used, not when the
# URL conf loads the Stripe pages: web processes and management commands never pay for it.

T = TypeVar("T")
# Attempts after the first for a 409, 5xx or a connection error (the client's own retries).
MAX_NETWORK_RETRIES = 3
TIMEOUT_S = 30
PAGE_SIZE = 100


class BillingError(ApplicationError):
    """Stripe refused or failed a call (after the retries); the message says what it answered."""


@cache
def _counting_http_client_class() -> type:
    import stripe

    class CountingHttpClient(stripe.RequestsClient):
        """Counts every HTTP attempt the client makes (its retries included)."""

        def __init__(self, **kwargs) -> None:
            super().__init__(timeout=TIMEOUT_S, **kwargs)
            self.attempts = 0

        def request(self, method, url, headers, post_data=None):
            self.attempts += 1
            return super().request(method, url, headers, post_data)

    return CountingHttpClient


class Stripe:
    """One connection's client: ``call`` one request, ``each`` every item of a list."""

    def __init__(self, *, secret_key: str, api_base: str = "", page_size: int = PAGE_SIZE) -> None:
        import stripe

        self.http = _counting_http_client_class()()
        base = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(
            secret_key, base_addresses=base, max_network_retries=MAX_NETWORK_RETRIES, http_client=self.http
        )
        self.page_size = page_size
        self.calls = 0
        self.waits = 0
        self.retrier = Retrier(on_wait=lambda delay, why: None)

    @property
    def v1(self):
        return self.client.v1

    @property
    def retries(self) -> int:
        """Attempts the client repeated (5xx/409/connection) plus 429s waited out."""
        return max(self.http.attempts - self.calls, 0) + self.retrier.waits

    def call(self, fn: Callable[[], T], what: str) -> T:
        import stripe

        def once() -> T:
            self.calls += 1
            try:
                return fn()
            except stripe.RateLimitError as exc:
                raise RateLimited(_message(exc), parse_retry_after((exc.headers or {}).get("Retry-After"))) from None
            except stripe.AuthenticationError as exc:
                raise BillingError(f"{what}: Stripe refused the secret key ({_message(exc)}).") from None
            except stripe.APIConnectionError as exc:
                raise BillingError(
                    f"{what}: Stripe could not be reached after {MAX_NETWORK_RETRIES} retries ({_message(exc)})."
                ) from None
            except stripe.StripeError as exc:
                status = exc.http_status or "no status"
                retried = f" after {MAX_NETWORK_RETRIES} retries" if isinstance(status, int) and status >= 500 else ""
                raise BillingError(f"{what}: Stripe answered {status}{retried}: {_message(exc)}") from None

        try:
            return self.retrier.call(once, what)
        except ApplicationError as exc:
            if isinstance(exc, BillingError):
                raise
            raise BillingError(exc.message) from None

    def with_invoice(self, charge: dict) -> dict:
        """The charge with ``invoice`` set to the invoice it paid (None: not an invoice's).

        API versions before 2025-03-31 name it on the charge; later ones link an invoice to
        its payment through InvoicePayment objects, looked up by the charge's payment intent.
        """
        if not charge or charge.get("invoice") or not charge.get("payment_intent"):
            return charge
        intent = charge["payment_intent"]
        intent = intent.get("id") if isinstance(intent, dict) else intent
        found = self.call(
            lambda: self.v1.invoice_payments.list(
                {"payment": {"type": "payment_intent", "payment_intent": intent}, "limit": 1}
            ),
            f"finding the invoice paid by {intent}",
        )
        invoice = found.data[0].invoice if found.data else None
        return {**charge, "invoice": invoice.id if hasattr(invoice, "id") else invoice}

    def each(self, fn: Callable[[dict], object], params: dict, what: str) -> Iterator:
        """Every item of a list, page by page (``starting_after`` the last id, while ``has_more``).

        What ``auto_paging_iter`` does, but each page goes through ``call``, so a 429 on
        page 7 is waited out and the pages before it are not read again.
        """
        params = {"limit": self.page_size, **params}
        while True:
            page = self.call(lambda p=dict(params): fn(p), what)
            yield from page.data
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id


def _message(exc: stripe.StripeError) -> str:
    return (getattr(exc, "user_message", None) or str(exc._message or exc) or type(exc).__name__)[:300]
