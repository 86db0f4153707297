"""Dogfood: with BASTION_DOGFOOD_DSN set, a live Bastion server reports its own unhandled
exceptions to one of its own projects through the real sentry-sdk, and an exception inside
ingest is not reported again (no loop)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bastion.config import ConfigError, load
from bastion.errors.dogfood import Budget, from_ingest, guard
from tests.errors.server_process import (
    execute,
    free_port,
    gunicorn,
    migrate_and_create_project,
    query,
    server_env,
    wait_for,
)

pytestmark = pytest.mark.slow

FAIL_INSERTS = """
CREATE TRIGGER dogfood_disk_full BEFORE INSERT ON errors_event
BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END;
"""


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _ingest_posts(log: Path, project_id: str) -> list[str]:
    """The posts that carried an event: answered with its id (41 bytes), where the SDK's client
    reports (the events the guard dropped, sent when it flushes) are answered ``{}``."""
    if not log.exists():
        return []
    return [
        line
        for line in log.read_text().splitlines()
        if f"/api/{project_id}/" in line and '" 200 2 "' not in line
    ]


def test_server_exceptions_arrive_as_issues_and_ingest_failures_do_not_loop(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = server_env(tmp_path, port)
    project_id, key = migrate_and_create_project(env)
    env["BASTION_DOGFOOD_DSN"] = f"http://{key}@127.0.0.1:{port}/{project_id}"
    env["DJANGO_SETTINGS_MODULE"] = "tests.errors.dogfood_settings"
    db = tmp_path / "bastion.sqlite3"
    log = tmp_path / "access.log"
    base = f"http://127.0.0.1:{port}"
    events = "SELECT title FROM errors_event ORDER BY id"
    with gunicorn(env, port, "--access-logfile", str(log)):
        # 1. An unhandled exception in a view: 500 for the user, an issue in the project.
        assert _get(f"{base}/test-boom/?n=1") == 500
        wait_for(lambda: query(db, events), "the first event")
        issue = query(db, "SELECT title, culprit, event_count FROM errors_issue")
        assert issue == [("DogfoodBoom: dogfood test 1", "/test-boom/", 1)]

        # 2. Storing fails (the database refuses the insert): the report is accepted (journaled,
        # 200), the writer cannot store it and keeps it in a .rejected file beside the journal;
        # the log of that failure would go to the same ingest; the guard drops it.
        execute(db, FAIL_INSERTS)
        assert _get(f"{base}/test-boom/?n=2") == 500
        wait_for(
            lambda: list((tmp_path / "ingest-journal").glob("*.rejected")),
            "the refused write to be kept",
        )
        posts = _ingest_posts(log, project_id)
        assert len(posts) == 2 and all('" 200 ' in p for p in posts)

        # 3. Storage works again. Anything queued by step 2 would be sent before this report
        # (one transport queue per process, first in, first out) and stored now.
        execute(db, "DROP TRIGGER dogfood_disk_full;")
        assert _get(f"{base}/test-boom/?n=3") == 500
        wait_for(lambda: len(query(db, events)) >= 2, "the third event")
    titles = [row[0] for row in query(db, events)]
    assert titles == ["DogfoodBoom: dogfood test 1", "DogfoodBoom: dogfood test 3"]
    assert len(_ingest_posts(log, project_id)) == 3


def test_guard_drops_ingest_events_and_caps_the_rate() -> None:
    ingest_request = {"request": {"url": "http://127.0.0.1:8000/api/3/envelope/?sentry_key=x"}}
    assert from_ingest(ingest_request)
    assert guard(ingest_request, {}) is None
    in_committer = {
        "exception": {
            "values": [{"stacktrace": {"frames": [{"module": "bastion.errors.committer"}]}}]
        }
    }
    assert from_ingest(in_committer)
    assert from_ingest({"logger": "bastion.errors.views", "message": "ingest refused"})
    page = {"request": {"url": "http://127.0.0.1:8000/o/acme/errors/shop/"}, "logger": "django"}
    assert not from_ingest(page)
    assert guard(page, {}) is page

    budget = Budget(limit=3)
    assert [budget.take(now=60.0) for _ in range(5)] == [True, True, True, False, False]
    assert budget.dropped == 2
    assert budget.take(now=120.0)  # the next minute


def test_dogfood_dsn_is_validated_at_start_up(tmp_path: Path) -> None:
    base = {"BASTION_DATA_DIR": str(tmp_path)}
    assert load(base).dogfood_dsn == ""
    dsn = "http://0123456789abcdef0123456789abcdef@127.0.0.1:8000/3"
    assert load({**base, "BASTION_DOGFOOD_DSN": dsn}).dogfood_dsn == dsn
    for bad in ("not a dsn", "http://127.0.0.1:8000/3", "http://key@127.0.0.1:8000/shop"):
        with pytest.raises(ConfigError, match="BASTION_DOGFOOD_DSN"):
            load({**base, "BASTION_DOGFOOD_DSN": bad})
