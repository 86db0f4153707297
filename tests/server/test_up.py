"""`bastion up` as a user runs it: a real process tree on loopback, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_up(
    data_dir: Path, port: int, smtp_port: int, database_url: str | None
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "BASTION_DATA_DIR": str(data_dir),
        "BASTION_PORT": str(port),
        "BASTION_SMTP_SINK_PORT": str(smtp_port),
        "BASTION_WEB_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("BASTION_DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest-django's test settings are not for this server
    if database_url:
        env["BASTION_DATABASE_URL"] = database_url
    return subprocess.Popen(
        [sys.executable, "-m", "bastion", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout_s: float = 60.0) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not seen; output was:\n{''.join(seen)}")


def stop(process: subprocess.Popen[str]) -> str:
    descendants = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    _gone, alive = psutil.wait_procs(descendants, timeout=5)
    assert not alive, f"children still running after Ctrl-C: {alive}"
    return output


def test_up_starts_everything_prints_admin_once_and_stops_cleanly(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = os.environ.get("BASTION_DATABASE_URL")
    if database_url:
        pytest.skip("runs on the SQLite pass: it starts its own server on its own data folder")
    port, smtp_port = free_port(), free_port()
    first = start_up(tmp_path, port, smtp_port, None)
    try:
        banner = read_until(first, "Bastion is running on")
        assert "First admin created" in banner
        assert "username  admin" in banner
        if "registered as local" not in banner:
            read_until(first, "registered as local")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail(
                "a@example.test", ["someone@inbox.bastion.test"], "Subject: hello\r\n\r\nhi"
            )
        names = " ".join(
            " ".join(c.cmdline())
            for c in psutil.Process(first.pid).children(recursive=True)
            if c.status() != psutil.STATUS_ZOMBIE
        )
        for part in (
            "gunicorn",
            "bastion worker",
            "bastion scheduler",
            "bastion mailsink",
            "agent start",
        ):
            assert part in names, f"{part} not running: {names}"
    finally:
        output = stop(first)
    assert first.returncode == 0, output
    assert (tmp_path / "bastion.sqlite3").exists()
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"

    # A second start reuses the database: no new admin, and it comes up quickly.
    second = start_up(tmp_path, port, smtp_port, None)
    try:
        banner = read_until(second, "Bastion is running on")
        assert "First admin created" not in banner
    finally:
        stop(second)

    import sqlite3

    with sqlite3.connect(tmp_path / "bastion.sqlite3") as db:
        subjects = [row[0] for row in db.execute("SELECT subject FROM browser_mailmessage")]
        users = db.execute("SELECT count(*) FROM core_user").fetchone()[0]
        agent_states = {row[0] for row in db.execute("SELECT state FROM jobs_agent")}
    assert subjects == ["hello"]
    assert users == 1
    # The local agent was stopped before the server, so it could say goodbye each time.
    assert agent_states == {"disconnected"}
