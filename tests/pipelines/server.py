"""A real Bastion server process (gunicorn) on its own migrated database, real agent processes,
and a small JSON client: for end-to-end builds with no shared test connection in between."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import BASTION, Cli

GUNICORN = str(Path(BASTION).with_name("gunicorn"))
FAST = {
    "BASTION_AGENT_POLL_INTERVAL_S": "0.2",
    "BASTION_AGENT_LONG_POLL_S": "2",
    "BASTION_AGENT_HEARTBEAT_INTERVAL_S": "0.5",
    "BASTION_AGENT_LOST_AFTER_S": "5",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


@dataclass
class Server:
    cli: Cli
    logs: Path
    url: str = ""
    api_token: str = ""
    agent_token: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web: subprocess.Popen[bytes] | None = None
    port: int = 0

    def _spawn(self, name: str, args: list[str], **env: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:  # a restarted process appends
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=self.cli.env(**FAST, **env)
            )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        cli = self.cli
        cli.run("org", "create", "acme", check=True)
        cli.run("cluster", "create", "acme", "default", check=True)
        issued = cli.run("agent-token", "create", "--org", "acme", "--json", check=True)
        self.agent_token = json.loads(issued.stdout)["token"]
        api = cli.run(
            "token", "create", "--org", "acme", "--role", "owner", "--name", "e2e", "--json",
            check=True,
        )  # fmt: skip
        self.api_token = json.loads(api.stdout)["token"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_web()

    def start_web(self) -> None:
        """The web process (gunicorn) on the server's port; returns once it answers."""
        self.web = self._spawn(
            "server",
            [GUNICORN, "bastion.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--worker-class", "gthread", "--threads", "8",
             "--timeout", "60", "--log-level", "warning"],
            DJANGO_SETTINGS_MODULE="bastion.settings",
        )  # fmt: skip
        wait_until(self._ready, timeout=90)  # a loaded machine imports Django slowly

    def stop_web(self) -> None:
        """Stop the web process as a restart would (SIGTERM, then wait for it to exit)."""
        assert self.web is not None
        self.stop_proc(self.web)
        self.web = None

    def scheduler(self) -> subprocess.Popen[bytes]:
        """``bastion scheduler``: marks silent agents lost, sweeps builds, fires schedules."""
        return self._spawn("scheduler", [BASTION, "scheduler", "--interval", "0.2"])

    @staticmethod
    def stop_proc(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _ready(self) -> bool:
        try:
            # /healthz, not the OpenAPI document: generating that takes seconds on a busy machine.
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def agent(self, name: str, *args: str, queue: str = "default") -> subprocess.Popen[bytes]:
        return self._spawn(
            f"agent-{name}",
            [BASTION, "agent", "start", "--server", self.url, "--name", name,
             "--tags", f"queue={queue}", *args],
            BASTION_AGENT_TOKEN=self.agent_token,
        )  # fmt: skip

    def api(self, method: str, path: str, body: Any = None, missing_ok: bool = False) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.api_token}"},
            timeout=30,
        )
        if missing_ok and response.status_code == 404:
            return None
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()

    def log(self, job_id: int) -> str:
        body = self.api("GET", f"/jobs/{job_id}/log")
        return "".join(chunk["data"] for chunk in body["chunks"])

    def cli_remote(self, *args: str) -> subprocess.Popen[str]:
        env = self.cli.env(BASTION_URL=self.url, BASTION_TOKEN=self.api_token)
        return subprocess.Popen(
            [BASTION, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            self.stop_proc(proc)


@pytest.fixture
def server(cli: Cli, tmp_path: Path) -> Iterator[Server]:
    """A started server for one test (import it with ``cli`` and ``cli_template``)."""
    running = Server(cli, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()
