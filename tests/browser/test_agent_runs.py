"""A suite run end to end: two real ``bastion agent start`` processes take its jobs from the live
server, run the tests in Chromium, upload results, screenshots and videos, and the run stores
the results, whose files the run page then serves."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.urls import reverse

from bastion.browser import runs, services
from bastion.browser.models import BrowserRun, RunStatus
from bastion.jobs.models import Artifact
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.factories import make_project
from tests.jobs.helpers import World
from tests.labs.browser_site.server import LabServer
from tests.web.conftest import login_client

pytestmark = pytest.mark.slow

GREET = {
    "name": "greet",
    "start_url": "/form",
    "steps": [
        {"type": "#name", "value": "Ada"},
        {"click": "#go"},
        {"assert_text": "Hello, Ada (r)", "target": "#out"},
    ],
}
WRONG = {
    "name": "wrong",
    "start_url": "/form",
    "steps": [{"assert_text": "Goodbye", "target": "#out", "timeout_ms": 500}],
}


def _finished(run: BrowserRun) -> BrowserRun | None:
    """Also runs the scheduler's sweep (no scheduler runs here) in case the post-finish hook
    lost a race for the in-memory SQLite database, whose shared cache locks whole tables."""
    try:
        runs.sweep()
        run.refresh_from_db()
    except OperationalError:
        return None
    return run if run.status not in runs.UNFINISHED else None


def test_a_suite_runs_on_two_agents_and_its_results_and_files_are_stored(
    agents: Agents,  # noqa: F811
    lab: LabServer,
) -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="lab")
    for test in (GREET, WRONG):
        services.save_test(world.principal, project, test)
    environment = services.create_environment(
        world.principal, project, slug="lab", name="Lab", base_url=lab.url
    )
    suite = services.create_suite(
        world.principal, project, slug="all", tests=["greet", "wrong"], concurrency=2
    )
    run = runs.start_run(
        world.principal, project, runs.RunRequest(suite=suite, environment=environment)
    )
    first = agents.start(world.token)
    second = agents.start(world.token)
    done = wait_for(lambda: _finished(run), timeout=240, step=0.2)
    assert done.status == RunStatus.FAILED
    by_slug = {r["slug"]: r for r in done.results}
    assert by_slug["greet"]["status"] == "passed" and by_slug["wrong"]["status"] == "failed"
    assert [s["status"] for s in by_slug["greet"]["steps"]][-1] == "passed"
    jobs = runs.run_jobs(done)
    assert len(jobs) == 2 and {j.state for j in jobs} == {"passed", "failed"}
    assert first.poll() is None and second.poll() is None

    greet = by_slug["greet"]
    final = f"{greet['artifact_dir']}{greet['final_screenshot']}"
    assert Artifact.objects.filter(job_id=greet["job"], path=final).exists(), final
    client = login_client(world.owner)
    url = reverse(
        "web:browser-run", kwargs={"org": world.org.slug, "project": "lab", "run_id": run.pk}
    )
    page = client.get(url).content.decode()
    assert "Accept as baseline" in page and "Goodbye" in page
    picture = client.get(url + "files/", {"job": greet["job"], "path": final})
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert b"".join(picture.streaming_content).startswith(b"\x89PNG")  # type: ignore[attr-defined]
