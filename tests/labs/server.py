"""A tiny lab web server: stdlib ThreadingHTTPServer on 127.0.0.1, a free port, optional TLS.

A lab app is a function ``(LabRequest) -> LabResponse``; every method is dispatched to it, so
the app decides how TRACE, OPTIONS or unknown methods behave. The server sends no headers of
its own except Date (no Server banner unless the app sets one).
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class LabRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    raw_request: bytes
    host_port: int
    scheme: str


@dataclass
class LabResponse:
    status: int = 200
    body: bytes | str = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


LabApp = Callable[[LabRequest], LabResponse]


class _Handler(BaseHTTPRequestHandler):
    app: LabApp
    scheme: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        raw = (self.requestline + "\r\n" + str(self.headers)).encode("latin-1", "replace")
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(min(length, 1_000_000))
        request = LabRequest(
            method=self.command,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_request=raw,
            host_port=self.server.server_address[1],
            scheme=self.scheme,
        )
        response = self.app(request)
        body = response.body.encode() if isinstance(response.body, str) else response.body
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


class _LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Scanners hang up mid-response and abort TLS handshakes on purpose; anything else
        # (a lab bug, an assertion in a lab route) is still printed.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextlib.contextmanager
def serve(app: LabApp, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1:<free port>; yield its base URL (ending in /)."""
    scheme = "https" if tls else "http"
    handler = type("LabHandler", (_Handler,), {"app": staticmethod(app), "scheme": scheme})
    server = _LabHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
