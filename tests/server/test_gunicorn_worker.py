"""The web server's worker closes a keep-alive connection after REQUESTS_PER_CONNECTION requests
(a real gunicorn process on loopback, a raw keep-alive client)."""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.gunicorn_worker import REQUESTS_PER_CONNECTION, WORKER_CLASS
from tests.pipelines.server import GUNICORN, free_port, wait_until


@pytest.fixture
def port() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [GUNICORN, "tests.server.keepalive_app:app", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", WORKER_CLASS, "--threads", "2",
         "--keep-alive", "30", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _answers(port), timeout=60)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _post(sock: socket.socket, reader: Any, n: int) -> str:
    """One request on the open connection; the answer's Connection header."""
    body = b"x" * n
    sock.sendall(
        b"POST /api/1/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert reader.readline().startswith(b"HTTP/1.1 200")
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    assert reader.read(int(headers["content-length"])) == str(n).encode()
    return headers.get("connection", "")


def test_a_keepalive_connection_is_closed_after_the_limit(port: int) -> None:
    for _ in range(2):  # and the next connection gets the full count again
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")
            answers = [_post(sock, reader, n) for n in range(REQUESTS_PER_CONNECTION)]
            assert answers[:-1] == ["keep-alive"] * (REQUESTS_PER_CONNECTION - 1)
            assert answers[-1] == "close"
            assert reader.read(1) == b""  # the server closed its end
