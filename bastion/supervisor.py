"""`bastion up`: run the web server, task worker, scheduler, mail sink and local agent together.

Children run in their own sessions so that Ctrl-C reaches only the supervisor, which then
stops them in order (agent first, web last) with SIGTERM and a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import httpx

GRACE_S = 10.0
MAX_RESTARTS_PER_MINUTE = 5


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


def _pump(name: str, stream: IO[bytes], out: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, b""):
        out(f"[{name}] {raw.decode(errors='replace').rstrip()}")


@dataclass
class Supervisor:
    children: list[Child]
    out: Callable[[str], None] = print
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self, child: Child) -> None:
        env = {**os.environ, **child.env}
        child.process = subprocess.Popen(
            child.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert child.process.stdout is not None
        threading.Thread(
            target=_pump, args=(child.name, child.process.stdout, self.out), daemon=True
        ).start()

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)

    def _restart_allowed(self, child: Child) -> bool:
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60]
        child.restarts.append(now)
        return len(child.restarts) <= MAX_RESTARTS_PER_MINUTE

    def watch(self) -> int:
        """Restart children that die, until asked to stop or one keeps crashing."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                if not self._restart_allowed(child):
                    self.out(f"[bastion] {child.name} keeps exiting (last status {code}); stopping")
                    return 1
                self.out(f"[bastion] {child.name} exited with status {code}; restarting it")
                self.start(child)
        return 0

    def stop_all(self) -> None:
        """Stop the agents first, while the server can still take their last log lines and
        their disconnect; then everything else together."""
        first = [c for c in self.children if c.name == "agent"]
        rest = [c for c in reversed(self.children) if c.name != "agent"]
        for wave in (first, rest):
            self._stop_wave(wave)

    def _stop_wave(self, children: list[Child]) -> None:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out(f"[bastion] {child.name} did not stop in {GRACE_S:.0f} s; killing it")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()


def wait_until_healthy(url: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def bastion_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "bastion", *args]
