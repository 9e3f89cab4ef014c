"""A fake Stripe account: the v1 endpoints the billing sync reads, in Stripe's JSON shapes.

- ``GET /v1/customers``, ``/v1/invoices`` (``customer``, ``created[gte]``), ``/v1/credit_notes``
  (``customer``, ``invoice``), ``/v1/refunds`` (``created[gte]``, ``expand[]=data.charge``),
  ``/v1/invoices/{id}/lines`` (an invoice embeds its first 10 lines, as Stripe does),
  ``/v1/charges/{id}``, ``/v1/invoice_payments`` (``invoice``, ``payment[type]``,
  ``payment[payment_intent]``: a charge names its payment intent, as in the current API,
  and InvoicePayment links it to its invoice), ``/v1/billing/meters`` and
  ``/v1/billing/meters/{id}/event_summaries`` (``customer``, ``start_time``, ``end_time``
  aligned to days, ``value_grouping_window=day``);
- lists newest first with ``limit`` (1–100, default 10), ``starting_after`` and ``has_more``;
- ``Authorization: Bearer <key>``: 401 in Stripe's error shape for any other key;
- a fault injector: the next N requests answer 500 (``api_error``) or 429 (``rate_limit``);
- ``send_event``: POSTs a signed event (``Stripe-Signature: t=…,v1=…``, HMAC-SHA256 of
  ``"t.payload"`` with the signing secret) to a webhook URL, as Stripe does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

from integrations.fakes.server import FakeApi, Reply

API_VERSION = "2026-10-28.endive"
DAY = 86_400
# Stripe embeds the first 10 lines of an invoice; has_more says the rest are at its lines URL.
EMBEDDED_LINES = 10


def unix(moment: dt.datetime | dt.date) -> int:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)
    return int(moment.timestamp())


def _error(status: int, kind: str, message: str, code: str = "") -> Reply:
    body = {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}
    return Reply(status, body, {"Request-Id": "req_fake"})


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Stripe's ``Stripe-Signature`` header for ``payload``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class FakeStripe(FakeApi):
    def __init__(self, *, secret_key: str = "sk_test_fake") -> None:  # noqa: S107
        super().__init__()
        self.secret_key = secret_key
        self.numbers = itertools.count(1)
        self.clock = unix(dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
        self.customers: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.invoice_lines: dict[str, list[dict]] = {}
        self.credit_notes: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.invoice_payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.meters: dict[str, dict] = {}
        # meter id → customer id → day → value (what the summaries aggregate, "sum")
        self.meter_values: dict[str, dict[str, dict[dt.date, Decimal]]] = {}
        self.faults: list[int] = []
        self.calls: list[tuple[str, dict[str, list[str]]]] = []
        self.idempotency_keys: list[str] = []

    # --- the account's data -----------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.numbers):06d}"

    def _tick(self) -> int:
        self.clock += 60
        return self.clock

    def add_customer(self, *, email: str = "", name: str = "", metadata: dict | None = None) -> str:
        with self.lock:
            cid = self._id("cus")
            self.customers[cid] = {
                "id": cid,
                "object": "customer",
                "created": self._tick(),
                "email": email or None,
                "name": name or None,
                "metadata": dict(metadata or {}),
                "currency": "usd",
                "livemode": False,
            }
            return cid

    def add_meter(self, *, event_name: str, display_name: str = "") -> str:
        with self.lock:
            mid = self._id("mtr")
            self.meters[mid] = {
                "id": mid,
                "object": "billing.meter",
                "created": self._tick(),
                "display_name": display_name or event_name,
                "event_name": event_name,
                "status": "active",
                "default_aggregation": {"formula": "sum"},
                "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
                "value_settings": {"event_payload_key": "value"},
                "livemode": False,
            }
            self.meter_values[mid] = {}
            return mid

    def record_usage(self, meter: str, customer: str, day: dt.date, value: Decimal | str | int) -> None:
        """Set the day's aggregated value (a later call for the same day restates it)."""
        with self.lock:
            self.meter_values[meter].setdefault(customer, {})[day] = Decimal(str(value))

    def add_invoice(
        self,
        customer: str,
        *,
        lines: list[dict],
        currency: str = "usd",
        status: str = "open",
        period: tuple[dt.date, dt.date] | None = None,
        created: int | None = None,
    ) -> str:
        """``lines``: ``{"amount": cents, "price": id, "quantity": n, "period": (start, end)}``."""
        with self.lock:
            iid = self._id("in")
            created = created or self._tick()
            data = []
            for line in lines:
                start, end = line.get("period") or period or (None, None)
                data.append(
                    {
                        "id": self._id("il"),
                        "object": "line_item",
                        "amount": line["amount"],
                        "currency": currency,
                        "description": line.get("description", ""),
                        "invoice": iid,
                        "period": {"start": unix(start) if start else created, "end": unix(end) if end else created},
                        "pricing": {
                            "type": "price_details",
                            "price_details": {"price": line.get("price", "price_x"), "product": "prod_x"},
                            "unit_amount_decimal": None,
                        },
                        "quantity": line.get("quantity"),
                        "quantity_decimal": str(line["quantity"]) if line.get("quantity") is not None else None,
                    }
                )
            total = sum(line["amount"] for line in lines)
            self.invoice_lines[iid] = data
            start, end = period or (None, None)
            self.invoices[iid] = {
                "id": iid,
                "object": "invoice",
                "created": created,
                "customer": customer,
                "currency": currency,
                "status": "draft",
                "number": f"FAKE-{len(self.invoices) + 1:04d}",
                "subtotal": total,
                "total": total,
                "amount_due": total,
                "amount_paid": 0,
                "amount_remaining": total,
                "period_start": unix(start) if start else created,
                "period_end": unix(end) if end else created,
                "status_transitions": {
                    "finalized_at": None,
                    "paid_at": None,
                    "voided_at": None,
                    "marked_uncollectible_at": None,
                },
                # As Stripe: the first EMBEDDED_LINES lines inline, the rest from /v1/invoices/{id}/lines.
                "lines": {
                    "object": "list",
                    "data": data[:EMBEDDED_LINES],
                    "has_more": len(data) > EMBEDDED_LINES,
                    "total_count": len(data),
                    "url": f"/v1/invoices/{iid}/lines",
                },
                "livemode": False,
            }
            if status != "draft":
                self.set_invoice_status(iid, "open", at=created)
            if status not in ("draft", "open"):
                self.set_invoice_status(iid, status)
            return iid

    def set_invoice_status(self, iid: str, status: str, *, at: int | None = None) -> dict:
        with self.lock:
            invoice = self.invoices[iid]
            at = at or self._tick()
            invoice["status"] = status
            transitions = invoice["status_transitions"]
            if status == "open":
                transitions["finalized_at"] = at
            elif status == "paid":
                transitions["paid_at"] = at
                invoice["amount_paid"], invoice["amount_remaining"] = invoice["amount_due"], 0
            elif status == "void":
                transitions["voided_at"] = at
            elif status == "uncollectible":
                transitions["marked_uncollectible_at"] = at
            return invoice

    def add_credit_note(self, iid: str, amount: int, *, status: str = "issued") -> str:
        with self.lock:
            invoice = self.invoices[iid]
            cnid = self._id("cn")
            self.credit_notes[cnid] = {
                "id": cnid,
                "object": "credit_note",
                "created": self._tick(),
                "customer": invoice["customer"],
                "invoice": iid,
                "currency": invoice["currency"],
                "amount": amount,
                "total": amount,
                "subtotal": amount,
                "status": status,
                "type": "post_payment" if invoice["status"] == "paid" else "pre_payment",
                "number": f"{invoice['number']}-CN-{len(self.credit_notes) + 1:02d}",
                "reason": "order_change",
                "livemode": False,
            }
            return cnid

    def add_refund(self, iid: str, amount: int, *, status: str = "succeeded") -> str:
        """A refund of (part of) the invoice's payment: its charge is made on first use."""
        with self.lock:
            invoice = self.invoices[iid]
            payment = next((p for p in self.invoice_payments.values() if p["invoice"] == iid), None)
            charge = self.charges[payment["charge"]] if payment else None
            if charge is None:
                chid, intent = self._id("ch"), self._id("pi")
                payment_id = self._id("inpay")
                self.invoice_payments[payment_id] = {
                    "id": payment_id,
                    "object": "invoice_payment",
                    "invoice": iid,
                    "amount_paid": invoice["amount_paid"] or invoice["total"],
                    "currency": invoice["currency"],
                    "is_default": True,
                    "payment": {"type": "payment_intent", "payment_intent": intent},
                    "status": "paid",
                    "created": self._tick(),
                    "charge": chid,  # the fake's own link, not in Stripe's shape
                }
                # The current API's shape: a charge names its payment intent, not its invoice
                # (InvoicePayment links the two).
                charge = self.charges[chid] = {
                    "id": chid,
                    "object": "charge",
                    "created": self._tick(),
                    "amount": invoice["amount_paid"] or invoice["total"],
                    "amount_refunded": 0,
                    "currency": invoice["currency"],
                    "customer": invoice["customer"],
                    "payment_intent": intent,
                    "paid": True,
                    "refunded": False,
                    "status": "succeeded",
                    "livemode": False,
                }
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            reid = self._id("re")
            self.refunds[reid] = {
                "id": reid,
                "object": "refund",
                "created": self._tick(),
                "amount": amount,
                "currency": invoice["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "reason": "requested_by_customer",
                "status": status,
            }
            return reid

    def fail_next(self, count: int, *, status: int = 500, after: int = 0) -> None:
        """After ``after`` more good requests, the next ``count`` answer ``status`` (500 or 429)."""
        with self.lock:
            self.faults.extend([0] * after + [status] * count)

    def calls_to(self, path: str) -> list[dict[str, list[str]]]:
        return [query for p, query in self.calls if p == path]

    # --- webhooks -----------------------------------------------------------------------

    def event(self, type_: str, obj: dict, *, event_id: str = "") -> dict:
        return {
            "id": event_id or self._id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self._tick(),
            "type": type_,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
        }

    def send_event(
        self, url: str, secret: str, event: dict, *, timestamp: int | None = None, signature: str = ""
    ) -> tuple[int, str]:
        """POST ``event`` to ``url`` signed as Stripe signs it; (status, body) of the answer."""
        payload = json.dumps(event, indent=2)
        header = signature or sign(payload, secret, timestamp)
        request = urllib.request.Request(  # noqa: S310 (a local URL the test gives)
            url,
            data=payload.encode(),
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # --- the API ------------------------------------------------------------------------

    def handle(self, method, path, query, body, headers):
        with self.lock:
            self.calls.append((path, query))
            if headers.get("Idempotency-Key"):
                self.idempotency_keys.append(headers["Idempotency-Key"])
            if headers.get("Authorization") != f"Bearer {self.secret_key}":
                raise _error(401, "invalid_request_error", "Invalid API Key provided: sk_test_****")
            status = self.faults.pop(0) if self.faults else 0
            if status:
                if status == 429:
                    raise _error(
                        429, "invalid_request_error", "Too many requests hit the API too quickly.", "rate_limit"
                    )
                raise _error(status, "api_error", "Something went wrong on Stripe's end (injected).")
            if method != "GET":
                raise _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
            return 200, self._get(path, query)

    def _get(self, path: str, query: dict[str, list[str]]):
        parts = path.strip("/").split("/")
        one = {k: v[0] for k, v in query.items()}
        if path == "/v1/customers":
            return self._list(path, list(self.customers.values()), one)
        if path == "/v1/invoices":
            items = [
                i
                for i in self.invoices.values()
                if i["customer"] == one.get("customer", i["customer"])
                and i["created"] >= int(one.get("created[gte]", 0))
                and i["status"] == one.get("status", i["status"])
            ]
            return self._list(path, items, one)
        if path == "/v1/credit_notes":
            items = [
                c
                for c in self.credit_notes.values()
                if c["customer"] == one.get("customer", c["customer"])
                and c["invoice"] == one.get("invoice", c["invoice"])
                and c["created"] >= int(one.get("created[gte]", 0))
            ]
            return self._list(path, items, one)
        if path == "/v1/refunds":
            items = [
                r
                for r in self.refunds.values()
                if r["created"] >= int(one.get("created[gte]", 0)) and r["charge"] == one.get("charge", r["charge"])
            ]
            page = self._list(path, items, one)
            if "data.charge" in [v for k, vs in query.items() if k.startswith("expand") for v in vs]:
                page["data"] = [{**r, "charge": self.charges[r["charge"]]} for r in page["data"]]
            return page
        if len(parts) == 4 and parts[:2] == ["v1", "invoices"] and parts[3] == "lines":
            if parts[2] not in self.invoice_lines:
                raise _error(404, "invalid_request_error", f"No such invoice: '{parts[2]}'", "resource_missing")
            return self._list(path, self.invoice_lines[parts[2]], one, ordered=True)
        if path == "/v1/invoice_payments":
            items = [
                {k: v for k, v in p.items() if k != "charge"}
                for p in self.invoice_payments.values()
                if p["invoice"] == one.get("invoice", p["invoice"])
                and p["payment"]["type"] == one.get("payment[type]", p["payment"]["type"])
                and p["payment"]["payment_intent"] == one.get("payment[payment_intent]", p["payment"]["payment_intent"])
            ]
            return self._list(path, items, one)
        if len(parts) == 3 and parts[:2] == ["v1", "charges"]:
            if parts[2] not in self.charges:
                raise _error(404, "invalid_request_error", f"No such charge: '{parts[2]}'", "resource_missing")
            return self.charges[parts[2]]
        if path == "/v1/billing/meters":
            return self._list(path, list(self.meters.values()), one)
        if len(parts) == 5 and parts[:3] == ["v1", "billing", "meters"] and parts[4] == "event_summaries":
            return self._summaries(path, parts[3], one)
        raise _error(404, "invalid_request_error", f"Unrecognized request URL (GET: {path}).")

    def _summaries(self, path: str, meter: str, one: dict[str, str]) -> dict:
        if meter not in self.meters:
            raise _error(404, "invalid_request_error", f"No such billing meter: '{meter}'", "resource_missing")
        for name in ("customer", "start_time", "end_time"):
            if name not in one:
                raise _error(400, "invalid_request_error", f"Missing required param: {name}.", "parameter_missing")
        start, end = int(one["start_time"]), int(one["end_time"])
        if one.get("value_grouping_window") != "day":
            raise _error(400, "invalid_request_error", "This fake groups by day only (value_grouping_window=day).")
        if start % DAY or end % DAY:
            raise _error(400, "invalid_request_error", "start_time and end_time must be aligned to day boundaries.")
        values = self.meter_values[meter].get(one["customer"], {})
        items = []
        for day_start in range(start, end, DAY):
            day = dt.datetime.fromtimestamp(day_start, dt.UTC).date()
            if day in values:
                value = values[day]
                items.append(
                    {
                        "id": f"mtrusg_{meter}_{one['customer']}_{day:%Y%m%d}",
                        "object": "billing.meter_event_summary",
                        # Stripe sends a JSON number (a float to the client).
                        "aggregated_value": int(value) if value == value.to_integral() else float(value),
                        "start_time": day_start,
                        "end_time": day_start + DAY,
                        "meter": meter,
                        "livemode": False,
                    }
                )
        # Newest first, as every Stripe list.
        items.reverse()
        return self._list(path, items, one, ordered=True)

    def _list(self, path: str, items: list[dict], one: dict[str, str], *, ordered: bool = False) -> dict:
        if not ordered:
            items = sorted(items, key=lambda item: (item["created"], item["id"]), reverse=True)
        try:
            limit = int(one.get("limit", 10))
        except ValueError:
            raise _error(400, "invalid_request_error", "Invalid integer: limit") from None
        if not 1 <= limit <= 100:
            raise _error(400, "invalid_request_error", "Invalid limit: must be between 1 and 100.")
        start = 0
        if after := one.get("starting_after"):
            ids = [item["id"] for item in items]
            if after not in ids:
                raise _error(400, "invalid_request_error", f"Invalid starting_after: {after}")
            start = ids.index(after) + 1
        page = items[start : start + limit]
        return {"object": "list", "data": page, "has_more": start + limit < len(items), "url": path}


def running_stripe(api: FakeStripe, *, port: int = 0):
    """The fake listening on 127.0.0.1 (not started): ``with running_stripe(api) as fake: fake.url``.

    TCP_NODELAY on its sockets: the shared handler writes headers and body separately, and
    with Nagle's algorithm each keep-alive answer waited ~40 ms for the client's delayed ACK.
    """
    from integrations.fakes.server import RunningFake

    running = RunningFake(api, port=port)
    running.server.RequestHandlerClass.disable_nagle_algorithm = True  # this fake's own handler class
    return running
