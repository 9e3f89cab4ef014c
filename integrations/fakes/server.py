"""The HTTP plumbing both fakes share: a threaded server with keep-alive, JSON in and out."""

from __future__ import annotations

import abc
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from integrations.fakes.tls import server_context, write_certificate


class Reply(Exception):
    """Answer the request with ``status`` and a JSON ``body`` (and headers)."""

    def __init__(self, status: int, body, headers: dict | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class FakeApi(abc.ABC):
    """A fake's state and routes: ``handle(method, path, query, body, headers) -> (status, body)``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []

    @abc.abstractmethod
    def handle(self, method: str, path: str, query: dict[str, list[str]], body, headers) -> tuple[int, object]:
        """Answer one request, or raise ``Reply``."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the clients reuse their connections
    # Headers and body go out in separate writes; with Nagle on, a kept-alive connection
    # waits ~40 ms for the client's delayed ACK on every reply.
    disable_nagle_algorithm = True
    api: FakeApi

    def log_message(self, format, *args) -> None:
        return

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else raw
        except ValueError:
            body = None
        extra: dict = {}
        try:
            with self.api.lock:
                self.api.requests.append((method, parts.path))
            status, payload = self.api.handle(method, parts.path, parse_qs(parts.query), body, self.headers)
        except Reply as reply:
            status, payload, extra = reply.status, reply.body, reply.headers
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


class RunningFake:
    """A fake listening on 127.0.0.1 in a daemon thread; ``url`` is its base URL."""

    def __init__(self, api: FakeApi, *, port: int = 0, tls_dir: Path | None = None) -> None:
        handler = type("Handler", (_Handler,), {"api": api})
        self.api = api
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.ca_file = ""
        scheme = "http"
        if tls_dir is not None:
            cert, key = write_certificate(tls_dir)
            self.server.socket = server_context(cert, key).wrap_socket(self.server.socket, server_side=True)
            self.ca_file, scheme = str(cert), "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-crm", daemon=True)

    def start(self) -> RunningFake:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> RunningFake:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
