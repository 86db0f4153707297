"""An error storm in the production topology: 500 events of one new issue from the real
sentry-sdk to gunicorn (two worker processes, group commit on), alerts delivered by a real
``bastion worker`` process to a loopback webhook. The storm yields ONE alert."""

from __future__ import annotations

from pathlib import Path

import pytest
import sentry_sdk

from tests.errors.receivers import webhook_receiver
from tests.errors.sdk_helpers import sentry_client
from tests.errors.server_process import (
    free_port,
    gunicorn,
    migrate_and_create_project,
    process,
    query,
    run_python,
    server_env,
    wait_for,
)

pytestmark = pytest.mark.slow
SECRET = "whsec-storm-0123456789"
CREATE_CHANNEL = """
import sys, django; django.setup()
from bastion.core.access import Principal
from bastion.core.models import Organization
from bastion.core.notifications import create_channel
org = Organization.objects.get(slug='self')
create_channel(Principal.system('test'), org, name='hook', kind='webhook', target=sys.argv[1],
               topics=['errors.*'], secret=sys.argv[2])
"""


class GatewayTimeout(Exception):
    pass


def _fail(n: int) -> None:
    raise GatewayTimeout(f"gateway timed out after {n} ms")


def test_500_events_of_a_new_issue_yield_one_alert(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, port, BASTION_INGEST_GROUP_COMMIT="true")
    project_id, key = migrate_and_create_project(env)
    db = tmp_path / "bastion.sqlite3"
    with webhook_receiver() as hooks:
        run_python(env, "-c", CREATE_CHANNEL, hooks.url("/hook"), SECRET)
        with (
            gunicorn(env, port, workers=2),
            process(env, "-m", "bastion", "worker", "--interval", "0.2"),
        ):
            dsn = f"http://{key}@127.0.0.1:{port}/{project_id}"
            with sentry_client(dsn, environment="production", transport_queue_size=1000):
                for n in range(500):
                    try:
                        _fail(n)
                    except GatewayTimeout:
                        sentry_sdk.capture_exception()
                assert sentry_sdk.flush(timeout=300) is None
            wait_for(
                lambda: query(db, "SELECT sum(event_count) FROM errors_issue") == [(500,)],
                "all 500 events to be stored",
            )
            wait_for(
                lambda: (
                    not query(
                        db,
                        "SELECT 1 FROM django_tasks_database_dbtaskresult WHERE status IN ('READY', 'RUNNING')",
                    )
                ),
                "the worker to finish every delivery task",
            )
        assert query(db, "SELECT count(*), max(event_count) FROM errors_issue") == [(1, 500)]
        [alert] = hooks.at("/hook")
    assert alert.signed_with(SECRET)
    assert alert.json["topic"] == "errors.issue.unexpected"
    assert alert.json["data"]["kinds"] == ["unexpected", "new"]
    assert query(db, "SELECT status FROM core_notificationdelivery") == [("sent",)]
    # The spike that followed (500 events within minutes, over the default 100) stayed quiet:
    # the issue was in its cool-down after the first alert.
    [(alerts, kind)] = query(db, "SELECT alerts, last_kind FROM errors_alertstate")
    assert (alerts, kind) == (1, "unexpected")
