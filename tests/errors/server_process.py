"""A real Bastion web server (gunicorn) on a fresh SQLite data directory, for tests that need
a separate server process (dogfood, alerts across processes)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

CREATE_PROJECT = """
import django; django.setup()
from bastion.core.access import Principal
from bastion.core import services
from bastion.errors.services import create_dsn_key, public_key_of
p = Principal.system('test')
org = services.create_organization(p.actor, name='Self', slug='self', owner=None)
project = services.create_project(p, org, slug='bastion', name='Bastion')
print(project.pk, public_key_of(create_dsn_key(p, project)))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "BASTION_DATA_DIR": str(data_dir),
        "BASTION_PORT": str(port),
        "DJANGO_SETTINGS_MODULE": "bastion.settings",
        **extra,
    }
    env.pop("BASTION_DATABASE_URL", None)
    return env


def run_python(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout


def migrate_and_create_project(env: dict[str, str]) -> tuple[str, str]:
    """Migrate the data directory's database; the new project's id and DSN public key."""
    run_python(env, "-m", "bastion", "migrate")
    project_id, key = run_python(env, "-c", CREATE_PROJECT).split()[-2:]
    return project_id, key


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll ``check`` until it returns something (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def process(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Python process in its own session, ended with SIGTERM (its whole group)."""
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@contextmanager
def gunicorn(
    env: dict[str, str], port: int, *extra: str, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    args = ["-m", "gunicorn", "bastion.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", "4", "--worker-class", "gthread",
            "--pythonpath", str(ROOT), *extra]  # fmt: skip

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    with process(env, *args) as proc:
        wait_for(listening, "the server to listen")
        yield proc


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the server's SQLite database (read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def execute(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        conn.executescript(sql)
        conn.commit()
    finally:
        conn.close()


def post_envelopes(
    port: int, project_id: str, key: str, bodies: list[bytes], connections: int = 8
) -> list[int]:
    """Post the envelopes from ``connections`` keep-alive connections at once; the statuses."""
    statuses: list[int] = []
    lock = threading.Lock()

    def send(chunk: list[bytes]) -> None:
        conn = HTTPConnection("127.0.0.1", port, timeout=120)
        for body in chunk:
            conn.request(
                "POST",
                f"/api/{project_id}/envelope/",
                body=body,
                headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"},
            )
            response = conn.getresponse()
            response.read()
            with lock:
                statuses.append(response.status)
        conn.close()

    threads = [
        threading.Thread(target=send, args=(bodies[i::connections],)) for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return statuses
