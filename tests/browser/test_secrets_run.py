"""Secrets of a test and of an environment reach the browser on a real agent, and nowhere else:
not the job table, not the job log, not the stored results."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError

from bastion.browser import runs, services, vault
from bastion.browser.models import BrowserRun, RunStatus
from bastion.jobs import dispatch
from bastion.jobs.logs import job_secrets
from bastion.jobs.models import Job, JobLogChunk
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.factories import make_project
from tests.jobs.helpers import World
from tests.labs.browser_site.server import LabServer

TEST_SECRET = "Ada-s3cret-name"
ENV_SECRET = "green-passphrase-42"
GREET = {
    "name": "greet",
    "start_url": "/form",
    "steps": [
        {"type": "#name", "value": "{{who}}"},
        {"log": "colour {{colour}}"},
        {"click": "#go"},
        {"assert_text": "Hello, {{who}} (r)", "target": "#out"},
    ],
}


def _setup(world: World, base_url: str) -> BrowserRun:
    project = make_project(world.org, slug="lab")
    test = services.save_test(world.principal, project, GREET)
    vault.set_secret(world.principal, test, "who", TEST_SECRET)
    environment = services.create_environment(
        world.principal, project, slug="lab", name="Lab", base_url=base_url
    )
    vault.set_secret(world.principal, environment, "colour", ENV_SECRET)
    return runs.start_run(
        world.principal,
        project,
        runs.RunRequest(test=test, environment=environment, video=False),
    )


@pytest.mark.django_db
def test_the_job_row_holds_secrets_encrypted_and_the_agent_gets_them_in_clear() -> None:
    world = World(cluster_name="default")
    run = _setup(world, "http://127.0.0.1:9/")
    job = Job.objects.get(origin=runs.origin_of(run))
    stored = json.dumps(job.payload)
    assert TEST_SECRET not in stored and ENV_SECRET not in stored
    assert job.payload["secret_env"] == ["colour", "who"]
    assert sorted(job_secrets(job)) == sorted([ENV_SECRET, TEST_SECRET])
    agent, _ = world.agent()
    assert dispatch.poll(agent) is not None
    accepted = dispatch.accept(agent, job.pk)
    assert accepted.spec.payload["env"] == {"who": TEST_SECRET, "colour": ENV_SECRET}
    assert "env_encrypted" not in accepted.spec.payload


@pytest.mark.django_db
def test_the_secrets_of_imported_modules_travel_with_the_job() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="lab")
    login = {"name": "login", "import_only": True, "steps": [{"log": "{{password}}"}]}
    outer = {"name": "outer", "import_only": True, "steps": [{"module": "login"}]}
    unused = {"name": "unused", "import_only": True, "steps": [{"log": "{{other}}"}]}
    for definition, secret in ((login, "password"), (outer, "who"), (unused, "other")):
        module = services.save_test(world.principal, project, definition)
        vault.set_secret(world.principal, module, secret, f"{secret}-of-{module.slug}")
    test = services.save_test(
        world.principal,
        project,
        {"name": "t", "steps": [{"if": "true", "steps": [{"module": "outer"}]}]},
    )
    vault.set_secret(world.principal, test, "who", "the test's own")
    run = runs.start_run(world.principal, project, runs.RunRequest(test=test, video=False))
    job = Job.objects.get(origin=runs.origin_of(run))
    assert job.payload["secret_env"] == ["password", "who"]  # not the unused module's
    assert "password-of-login" not in json.dumps(job.payload)
    # The caller's value wins over its module's, as its parameters do.
    assert sorted(job_secrets(job)) == ["password-of-login", "the test's own"]


@pytest.mark.slow
def test_secrets_reach_the_browser_and_are_masked_everywhere(
    agents: Agents,  # noqa: F811
    lab: LabServer,
) -> None:
    world = World(cluster_name="default")
    run = _setup(world, lab.url)
    agents.start(world.token)

    def finished() -> BrowserRun | None:
        try:
            runs.sweep()
            run.refresh_from_db()
        except OperationalError:
            return None
        return run if run.status not in runs.UNFINISHED else None

    done = wait_for(finished, timeout=180, step=0.2)
    assert done.status == RunStatus.PASSED, done.results
    results = json.dumps(done.results)
    assert TEST_SECRET not in results and ENV_SECRET not in results
    assert done.results[0]["variables"]["who"] == "****"
    log = "".join(
        JobLogChunk.objects.filter(job__origin=runs.origin_of(run)).values_list("data", flat=True)
    )
    assert "[step] greet 4" in log  # the log streamed the run
    assert TEST_SECRET not in log and ENV_SECRET not in log
