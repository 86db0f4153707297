"""A live server that, like gunicorn in production, accepts chunked request bodies.

Django's test server (wsgiref) reads only Content-Length bodies; @sentry/node always streams
its envelopes with ``Transfer-Encoding: chunked``. This is the same LiveServerThread with a
request handler that de-chunks the body before handing it to the real Django application.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from django.core.servers.basehttp import ServerHandler
from django.db import connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler

MAX_BODY = 64 * 1024 * 1024
_ONE_AT_A_TIME = threading.Lock()


def read_chunked(rfile: Any) -> bytes:
    parts: list[bytes] = []
    total = 0
    for _ in range(1_000_000):  # bounded: every round consumes a chunk header or ends
        size_line = rfile.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            for _ in range(100):  # trailers, up to the blank line
                if rfile.readline(8192) in {b"\r\n", b"\n", b""}:
                    break
            break
        total += size
        if total > MAX_BODY:
            raise ValueError("chunked body too large for the test server")
        parts.append(rfile.read(size))
        rfile.readline(8)
    return b"".join(parts)


class ChunkedRequestHandler(QuietWSGIRequestHandler):
    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        stdin: Any = self.rfile
        environ = self.get_environ()
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = read_chunked(self.rfile)
            stdin = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        handler = ServerHandler(stdin, self.wfile, self.get_stderr(), environ)
        handler.request_handler = self  # type: ignore[attr-defined]
        # One request at a time: with SQLite the test database is one shared in-memory
        # connection, which concurrent requests must not use at once.
        with _ONE_AT_A_TIME:
            handler.run(self.server.get_app())  # type: ignore[attr-defined]
        # No keep-alive: each request thread ends (and closes its connections) right away.
        self.close_connection = True


class ChunkedLiveServerThread(LiveServerThread):
    def _create_server(self, connections_override: Any = None) -> Any:
        return self.server_class(
            (self.host, self.port),
            ChunkedRequestHandler,
            allow_reuse_address=False,
            connections_override=connections_override,
        )


class ChunkedLiveServer:
    def __init__(self) -> None:
        from django.contrib.staticfiles.handlers import StaticFilesHandler

        overrides = {
            conn.alias: conn
            for conn in connections.all()
            if conn.vendor == "sqlite" and conn.is_in_memory_db()
        }
        self.thread = ChunkedLiveServerThread(
            "127.0.0.1", StaticFilesHandler, connections_override=overrides
        )
        self.thread.daemon = True
        for conn in overrides.values():
            conn.inc_thread_sharing()
        self.thread.start()
        self.thread.is_ready.wait(timeout=30)
        if self.thread.error:
            raise self.thread.error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.thread.port}"

    def stop(self) -> None:
        self.thread.terminate()
        deadline = time.monotonic() + 10
        for thread in threading.enumerate():
            if "process_request_thread" in thread.name:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for conn in self.thread.connections_override.values():
            conn.dec_thread_sharing()
