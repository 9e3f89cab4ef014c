"""A real local receiver that verifies signatures with standardwebhooks, and a movable clock."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from revops import clock
from revops.models import Role


@dataclass
class Received:
    webhook_id: str
    type: str
    data: dict
    signatures: int


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that accepts a webhook only with a valid signature (one
    of ``secrets``), records what it accepted, and can go down and come back on its port."""

    secrets: list[str] = field(default_factory=list)
    status: int = 204
    got: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = dict(self.headers.items())
                payload = None
                for secret in receiver.secrets:
                    try:
                        payload = Webhook(secret).verify(body, headers)
                        break
                    except WebhookVerificationError:
                        continue
                if payload is None:
                    receiver.refused.append(headers.get("webhook-id", ""))
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b"bad signature")
                    return
                receiver.got.append(
                    Received(
                        webhook_id=headers["webhook-id"],
                        type=payload["type"],
                        data=payload["data"],
                        signatures=len(headers["webhook-signature"].split(" ")),
                    )
                )
                self.send_response(receiver.status)
                self.end_headers()
                if receiver.status != 204:
                    self.wfile.write(json.dumps({"status": receiver.status}).encode())

            def log_message(self, *args):
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.got]


@pytest.fixture
def receiver():
    running = Receiver()
    running.start()
    yield running
    running.stop()


@dataclass
class MovableClock:
    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta) -> None:
        self.at += dt.timedelta(**delta)


@pytest.fixture
def moved_clock(monkeypatch):
    """revops.clock.now under the test's control (starts at the real now)."""
    movable = MovableClock(at=clock.now())
    monkeypatch.setattr(clock, "now", movable.now)
    return movable


@pytest.fixture
def finance(make_user, with_totp):
    return make_user(Role.FINANCE, email="finance-hooks@example.com")
