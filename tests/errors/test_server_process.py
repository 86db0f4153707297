"""The production configuration end to end: gunicorn (2 workers x 4 threads) on a fresh data
directory, group commit on, events captured from the real sentry-sdk and posted concurrently.
Every 200 must be a stored, grouped event once the server has answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from bastion.errors.dogfood import private_sdk_options
from tests.errors.server_process import (
    free_port,
    gunicorn,
    migrate_and_create_project,
    post_envelopes,
    query,
    server_env,
    wait_for,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _capture(count: int) -> list[bytes]:
    captured: list[bytes] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Envelope) -> None:
            captured.append(envelope.serialize())

    sentry_sdk.init(
        dsn="http://0123456789abcdef0123456789abcdef@127.0.0.1:9/1",
        transport=Capture,
        default_integrations=False,
        auto_enabling_integrations=False,
        **private_sdk_options(),
    )
    try:
        for n in range(count):
            try:
                raise (KeyError if n % 3 else ValueError)(f"item {n}")
            except (KeyError, ValueError):
                sentry_sdk.capture_exception()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None, default_integrations=False)
    return captured


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, str, str, Path]]:
    port = _free_port()
    env = {
        **os.environ,
        "BASTION_DATA_DIR": str(tmp_path),
        "BASTION_PORT": str(port),
        "BASTION_INGEST_GROUP_COMMIT": "true",
        "DJANGO_SETTINGS_MODULE": "bastion.settings",
    }
    env.pop("BASTION_DATABASE_URL", None)
    run = {"env": env, "cwd": ROOT, "check": True, "capture_output": True, "timeout": 300}
    subprocess.run([sys.executable, "-m", "bastion", "migrate"], **run)  # type: ignore[call-overload]
    setup = (
        "import django; django.setup()\n"
        "from bastion.core.access import Principal\n"
        "from bastion.core import services\n"
        "from bastion.errors.services import create_dsn_key, public_key_of\n"
        "p = Principal.system('test')\n"
        "org = services.create_organization(p.actor, name='T', slug='t', owner=None)\n"
        "project = services.create_project(p, org, slug='app', name='App')\n"
        "print(project.pk, public_key_of(create_dsn_key(p, project)))\n"
    )
    out = subprocess.run([sys.executable, "-c", setup], text=True, **run)  # type: ignore[call-overload]
    project_id, key = out.stdout.split()[-2:]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bastion.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--worker-class", "gthread"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield port, project_id, key, tmp_path / "bastion.sqlite3"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_concurrent_envelopes_are_all_stored_and_grouped(
    server: tuple[int, str, str, Path],
) -> None:
    port, project_id, key, db = server
    bodies = _capture(60)
    statuses = post_envelopes(port, project_id, key, bodies, connections=6)
    assert statuses == [200] * 60
    # Each 200 is a journaled write; the writer stores it moments later.
    wait_for(lambda: query(db, "SELECT count(*) FROM errors_event") == [(60,)], "60 events", 10)
    assert query(db, "SELECT count(*), sum(event_count) FROM errors_issue") == [(2, 60)]


def test_events_acknowledged_before_a_sigkill_are_stored_after_the_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = server_env(tmp_path, port, BASTION_INGEST_GROUP_COMMIT="true")
    project_id, key = migrate_and_create_project(env)
    db = tmp_path / "bastion.sqlite3"
    bodies = _capture(300)
    with gunicorn(env, port, workers=2) as first:
        assert post_envelopes(port, project_id, key, bodies) == [200] * 300
        os.killpg(first.pid, signal.SIGKILL)  # no shutdown: whatever the writer held is lost
        first.wait(timeout=30)
    # The journal keeps what was acknowledged and not yet stored (often a whole last batch).
    stored_before = query(db, "SELECT count(*) FROM errors_event")[0][0]
    with gunicorn(env, free_port(), workers=2):
        wait_for(
            lambda: query(db, "SELECT count(*) FROM errors_event") == [(300,)],
            f"the 300 events (had {stored_before}) after the restart",
            30,
        )
    assert query(db, "SELECT sum(event_count) FROM errors_issue") == [(300,)]
    assert list((tmp_path / "ingest-journal").glob("*.journal")) == []
