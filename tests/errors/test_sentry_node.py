"""The real @sentry/node SDK (npm), in its own process, sending to a live server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.errors.models import Attachment, Event
from tests.errors.chunked_server import ChunkedLiveServer
from tests.errors.conftest import Setup

pytestmark = pytest.mark.slow
NODE_DIR = Path(__file__).parent / "node"


def _node_sdk() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: cannot run the real @sentry/node SDK")
    if (NODE_DIR / "node_modules" / "@sentry" / "node").is_dir():
        return
    command = ["npm", "ci" if (NODE_DIR / "package-lock.json").exists() else "install"]
    subprocess.run(
        [*command, "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        check=True,
        timeout=300,
        capture_output=True,
    )


def test_node_sdk_exception_with_cause_message_and_attachment(
    chunked_live_server: ChunkedLiveServer, live_setup: Setup
) -> None:
    _node_sdk()
    done = subprocess.run(
        ["node", "send.js", live_setup.dsn(chunked_live_server.url)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    exception = Event.objects.get(event_id=report["ids"]["exception"])
    data = exception.data
    assert [e["type"] for e in data["exception"]] == ["TypeError", "Error"]
    assert exception.issue.title == "Error: server failed to start"
    assert exception.release == "web@2.0.1" and exception.environment == "production"
    assert data["tags"]["runtime"] == "node"
    assert data["user"]["id"] == "u-7"
    assert any(b.get("message") == "query users" for b in data["breadcrumbs"])
    assert data["request"]["headers"]["authorization"] == "[Filtered]"
    assert data["platform"] == "node"
    attachment = Attachment.objects.get(event=exception)
    with attachment.file.open("rb") as handle:
        assert handle.read() == b"NODE_ENV=production\n"
    message = Event.objects.get(event_id=report["ids"]["message"])
    assert message.level == "warning"
    assert message.issue.title == "cache miss for key 991"
    assert message.issue_id != exception.issue_id
