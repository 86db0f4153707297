"""Chunked request bodies through the production server (gunicorn, a real process): read when
small, refused with 413 past the limit without being buffered whole, nothing written."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import BASTION, Cli, cli, cli_template  # noqa: F401 - fixtures

LIMIT = 64 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(cli: Cli) -> Iterator[tuple[str, str, Cli]]:  # noqa: F811
    cli.run("createuser", "alice", "--email", "alice@example.test", check=True)
    cli.run("org", "create", "acme", "--owner", "alice", check=True)
    issued = cli.run(
        "token", "create", "--org", "acme", "--role", "owner", "--name", "t", "--json", check=True
    )
    token = json.loads(issued.stdout)["token"]
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(BASTION).with_name("gunicorn")), "-b", f"127.0.0.1:{port}", "-w", "1",
         "bastion.wsgi:application"],
        env=cli.env(BASTION_MAX_BODY_BYTES=str(LIMIT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")
        yield url, token, cli
    finally:
        process.terminate()
        process.wait(timeout=30)


def _chunks(size: int) -> Iterator[bytes]:
    yield b'{"slug": "chunky", "description": "'
    for _ in range(size // 1024):
        yield b"x" * 1024
    yield b'"}'


def test_chunked_bodies_under_gunicorn(server: tuple[str, str, Cli]) -> None:
    url, token, installation = server
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    projects = f"{url}/api/v1/organizations/acme/projects"

    too_big = httpx.post(projects, content=_chunks(4 * LIMIT), headers=headers, timeout=30)
    assert too_big.request.headers["Transfer-Encoding"] == "chunked"
    assert too_big.status_code == 413
    assert too_big.json()["detail"].startswith("Request body too large")
    assert installation.sql("SELECT count(*) FROM core_project") == [(0,)]

    small = httpx.post(projects, content=_chunks(8 * 1024), headers=headers, timeout=30)
    assert small.request.headers["Transfer-Encoding"] == "chunked"
    assert small.status_code == 201, small.text
    assert len(small.json()["description"]) == 8 * 1024
    assert installation.sql("SELECT slug FROM core_project") == [("chunky",)]
