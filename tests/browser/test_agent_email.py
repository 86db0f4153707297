"""Email steps on a real agent: a ``bastion agent start`` process runs a sign-up test against a
lab app that sends its confirmation over SMTP to the real sink; the agent reads the run's mail
through the agent API with its job token (never the database), extracts the code and the link,
and follows it. A test that asks for another run's mail fails with the server's refusal."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.db import OperationalError

from bastion.browser import runs, services
from bastion.browser.mail.sink import MailSink
from bastion.browser.models import BrowserRun, MailMessage, RunStatus
from bastion.jobs import services as job_services
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.browser.inbox_helpers import run_address
from tests.factories import make_project
from tests.jobs.helpers import World
from tests.labs.signup_site import SignupSite

pytestmark = pytest.mark.slow

SIGNUP = {
    "name": "signup",
    "start_url": "/signup",
    "steps": [
        {"type": "#email", "value": "{{run.email}}"},
        {"click": "#submit"},
        {"assert_text": "We sent a code", "target": "#sent", "match": "contains"},
        {"wait_for_email": "{{run.email}}", "timeout_ms": 30000},
        {"assert_email": "Confirm your sign-up"},
        {"assert_email": "Your code is", "attribute": "body", "match": "contains"},
        {"store_email": "code", "attribute": "code", "value": r"code is (\d{6})"},
        {"store_email": "confirm", "attribute": "link", "value": "confirm"},
        {"goto": "{{confirm}}"},
        {"assert_text": "Account confirmed for", "target": "#confirmed", "match": "contains"},
    ],
}


@pytest.fixture
def sink_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sink = MailSink("127.0.0.1", port)
    sink.start()
    yield port
    sink.stop()


def _finished(run: BrowserRun) -> BrowserRun | None:
    try:
        runs.sweep()
        run.refresh_from_db()
    except OperationalError:  # in-memory SQLite's shared cache under the live server: retry
        return None
    return run if run.status not in runs.UNFINISHED else None


def test_an_agent_runs_a_signup_with_its_email_round_trip(
    agents: Agents,  # noqa: F811
    sink_port: int,
) -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    with SignupSite(sink_port) as site:
        services.save_test(world.principal, project, SIGNUP)
        environment = services.create_environment(
            world.principal, project, slug="lab", name="Lab", base_url=site.url
        )
        # Another run, queued where no agent serves: its address is not this run's to read.
        idle = job_services.create_cluster(world.principal, world.org, name="idle")
        other = runs.start_run(
            world.principal,
            project,
            runs.RunRequest(
                test=services.get_test_for(world.principal, project, "signup"), cluster=idle
            ),
        )
        snoop = {
            "name": "snoop",
            "start_url": "/signup",
            "steps": [{"wait_for_email": run_address(other), "timeout_ms": 3000}],
        }
        services.save_test(world.principal, project, snoop)
        suite = services.create_suite(
            world.principal, project, slug="mail", tests=["signup", "snoop"], concurrency=1
        )
        run = runs.start_run(
            world.principal,
            project,
            runs.RunRequest(suite=suite, environment=environment, video=False),
        )
        agent = agents.start(world.token)
        done = wait_for(lambda: _finished(run), timeout=240, step=0.3)
    by_slug = {r["slug"]: r for r in done.results}
    signup, refused = by_slug["signup"], by_slug["snoop"]
    assert signup["status"] == "passed", signup
    assert signup["variables"]["code"].isdigit() and len(signup["variables"]["code"]) == 6
    assert "/confirm?token=" in signup["variables"]["confirm"]
    assert refused["status"] == "failed"
    assert "the server refused to read this mail" in refused["error"]
    assert "is not an address of this job's run" in refused["error"]
    assert done.status == RunStatus.FAILED
    message = MailMessage.objects.get(run=run)
    assert message.organization_id == world.org.pk
    assert message.inbox == signup["variables"]["run.email"]
    assert agent.poll() is None
