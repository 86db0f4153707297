"""Real agent processes against the live server, with short server-set intervals."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASTION = str(ROOT / ".venv" / "bin" / "bastion")


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings: Any) -> None:
    # Argon2 is the production hasher (tested elsewhere); these tests create users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fast_intervals(settings: Any) -> None:
    """Agents heartbeat every 0.3 s and are lost after 2 s of silence; long polls last 2 s."""
    settings.CONFIG = dataclasses.replace(
        settings.CONFIG,
        agent_poll_interval_s=0.2,
        agent_long_poll_s=2.0,
        agent_heartbeat_interval_s=0.3,
        agent_lost_after_s=2.0,
    )


class Agents:
    """Starts ``bastion agent start`` processes; every one is stopped at teardown."""

    def __init__(self, server: str, logs: Path) -> None:
        self.server = server
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, token: str, *args: str, tags: str = "queue=default") -> subprocess.Popen[bytes]:
        log = self.logs / f"agent-{len(self.procs)}.log"
        env = {**os.environ, "BASTION_AGENT_TOKEN": token}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [BASTION, "agent", "start", "--server", self.server, "--tags", tags, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.logs / f"agent-{self.procs.index(proc)}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def agents(live_server: Any, fast_intervals: None, tmp_path: Path) -> Iterator[Agents]:
    running = Agents(live_server.url, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (bounded in time and count)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


def process_gone(pid: int) -> bool:
    """True when the process no longer exists (or is a zombie nobody reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "State:\tZ" in status


def kill_group_quietly(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


assert sys.platform.startswith("linux"), "these tests use /proc and process groups"
