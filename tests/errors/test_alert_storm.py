"""An error storm in the production topology: 500 events of one new issue, serialized by the
real sentry-sdk, posted from 8 connections to gunicorn (two worker processes, group commit on),
alerts delivered by a real ``bastion worker`` process to a loopback webhook. The storm yields
ONE alert."""

from __future__ import annotations

from pathlib import Path

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from bastion.errors.dogfood import private_sdk_options
from tests.errors.receivers import hook_url, received_at, webhook_receiver
from tests.errors.server_process import (
    free_port,
    gunicorn,
    migrate_and_create_project,
    post_envelopes,
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
PENDING_TASKS = (
    "SELECT 1 FROM django_tasks_database_dbtaskresult WHERE status IN ('READY', 'RUNNING')"
)


class GatewayTimeout(Exception):
    pass


def _storm(count: int) -> list[bytes]:
    """``count`` envelopes of one new issue, as the real sentry-sdk serializes them."""
    captured: list[bytes] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Envelope) -> None:
            captured.append(envelope.serialize())

    sentry_sdk.init(
        dsn="http://0123456789abcdef0123456789abcdef@127.0.0.1:9/1",
        transport=Capture,
        environment="production",
        **private_sdk_options(),  # this frame's locals hold every envelope so far
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    try:
        for n in range(count):
            try:
                raise GatewayTimeout(f"gateway timed out after {n} ms")
            except GatewayTimeout:
                sentry_sdk.capture_exception()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None, default_integrations=False)
    return captured


def test_500_events_of_a_new_issue_yield_one_alert(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, port, BASTION_INGEST_GROUP_COMMIT="true")
    project_id, key = migrate_and_create_project(env)
    db = tmp_path / "bastion.sqlite3"
    bodies = _storm(500)
    with webhook_receiver() as hooks:
        run_python(env, "-c", CREATE_CHANNEL, hook_url(hooks, "/hook"), SECRET)
        with (
            gunicorn(env, port, workers=2),
            process(env, "-m", "bastion", "worker", "--interval", "0.2"),
        ):
            assert post_envelopes(port, project_id, key, bodies) == [200] * 500
            # Every 200 is a journaled event, stored moments later with its alert (if any).
            wait_for(
                lambda: (
                    query(db, "SELECT count(*), sum(event_count) FROM errors_issue") == [(1, 500)]
                ),
                "500 events in one issue",
                30,
            )
            wait_for(lambda: not query(db, PENDING_TASKS), "the worker to run every task", 180)
        [alert] = received_at(hooks, "/hook")
    assert alert.signed_with(SECRET)
    assert alert.json["topic"] == "errors.issue.unexpected"
    # The first batch the writer stores may already hold over 100 events: then the one alert
    # also says the new issue spikes.
    assert alert.json["data"]["kinds"] in (["unexpected", "new"], ["unexpected", "new", "spike"])
    assert query(db, "SELECT status FROM core_notificationdelivery") == [("sent",)]
    # The spike that followed (500 events within minutes, over the default 100) stayed quiet:
    # the issue was in its cool-down after the first alert, in both web processes.
    [(alerts, kind)] = query(db, "SELECT alerts, last_kind FROM errors_alertstate")
    assert (alerts, kind) == (1, "unexpected")
