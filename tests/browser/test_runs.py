"""Runs on the server: a suite run becomes jobs spread over agents; the results come back from
the jobs' uploaded artifacts when the last job finishes (hook or sweep)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from bastion.browser import runs, services
from bastion.browser.models import BrowserRun, RunStatus, Suite, SuiteTest
from bastion.browser.runs import RunRequest
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Project
from bastion.jobs import dispatch
from bastion.jobs.artifacts import upload_artifact
from bastion.jobs.models import Agent, Job
from tests.factories import make_org, make_project, make_user
from tests.jobs.helpers import World

pytestmark = pytest.mark.django_db(transaction=True)


def _test(name: str) -> dict[str, Any]:
    return {"name": name, "start_url": "/", "steps": [{"log": name}]}


def _result(name: str, status: str) -> dict[str, Any]:
    return {
        "test": name,
        "status": status,
        "started_at": "2026-01-01T00:00:00Z",
        "duration_ms": 12.0,
        "steps": [{"index": "1", "action": "log", "name": "", "status": status}],
        "final_screenshot": "screenshots/final.png",
    }


def _suite(world: World, project: Project, names: list[str], concurrency: int) -> Suite:
    suite = Suite.objects.create(
        project=project, slug="smoke", name="Smoke", concurrency=concurrency
    )
    for position, name in enumerate(names):
        stored = services.save_test(world.principal, project, _test(name))
        SuiteTest.objects.create(suite=suite, test=stored, position=position)
    return suite


def _agent_runs(agent: Agent, statuses: dict[str, str], upload: bool = True) -> Job:
    """What an agent does with the job: accept, start, upload results, finish."""
    job = dispatch.poll(agent)
    assert job is not None
    dispatch.accept(agent, job.pk)
    dispatch.start(job)
    job.refresh_from_db()
    results = [_result(slug, statuses[slug]) for slug in job.payload["slugs"]]
    if upload:
        body = json.dumps(results).encode()
        upload_artifact(job, runs.RESULTS_FILE, SimpleUploadedFile("r.json", body))
        upload_artifact(
            job, "artifacts/001/screenshots/final.png", SimpleUploadedFile("f.png", b"png")
        )
    failed = any(statuses[slug] != "passed" for slug in job.payload["slugs"])
    return dispatch.finish(job, 1 if failed else 0)


def test_a_suite_run_is_spread_over_agents_and_collects_the_results() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org)
    suite = _suite(world, project, ["one", "two", "three"], concurrency=2)
    run = runs.start_run(world.principal, project, RunRequest(suite=suite))
    jobs = runs.run_jobs(run)
    assert len(jobs) == 2 and {j.kind for j in jobs} == {"browser"}
    assert sorted(s for j in jobs for s in j.payload["slugs"]) == ["one", "three", "two"]
    assert all("browser-results.json" in j.payload["artifact_paths"] for j in jobs)
    assert run.status == RunStatus.QUEUED and run.versions == {"one": 1, "two": 1, "three": 1}

    first, _ = world.agent(name="a1")
    second, _ = world.agent(name="a2")
    statuses = {"one": "passed", "two": "failed", "three": "passed"}
    done_first = _agent_runs(first, statuses)
    run.refresh_from_db()
    assert run.status in (RunStatus.QUEUED, RunStatus.RUNNING)  # one job still to go
    done_second = _agent_runs(second, statuses)
    assert done_first.agent_id != done_second.agent_id
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert sorted((r["slug"], r["status"]) for r in run.results) == [
        ("one", "passed"),
        ("three", "passed"),
        ("two", "failed"),
    ]
    one = next(r for r in run.results if r["slug"] == "one")
    assert one["artifact_dir"] == "artifacts/001/" and one["job"] in {j.pk for j in jobs}
    assert run.finished_at is not None
    actions = set(AuditEvent.objects.filter(object_id=str(run.pk)).values_list("action", flat=True))
    assert {"browser.run.start", "browser.run.finish"} <= actions


def test_a_job_without_results_is_an_error_and_the_sweep_finishes_a_missed_run() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org)
    stored = services.save_test(world.principal, project, _test("alone"))
    run = runs.start_run(world.principal, project, RunRequest(test=stored, video=False))
    agent, _ = world.agent()
    job = _agent_runs(agent, {"alone": "passed"}, upload=False)
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR
    assert "without a result" in run.results[0]["error"]
    assert job.state == "passed"

    # A run whose hook never ran (status put back by hand) is finished by the sweep.
    BrowserRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, results=[])
    assert runs.sweep() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR and len(run.results) == 1
    assert runs.sweep() == 0


def test_bad_run_requests_change_nothing() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org)
    empty = Suite.objects.create(project=project, slug="empty", name="Empty")
    with pytest.raises(ValidationError):
        runs.start_run(world.principal, project, RunRequest(suite=empty))
    with pytest.raises(ValidationError):
        runs.start_run(world.principal, project, RunRequest())
    stored = services.save_test(world.principal, project, _test("x"))
    with pytest.raises(ValidationError):
        runs.start_run(world.principal, project, RunRequest(test=stored, concurrency=99))
    other_owner = make_user()
    other = make_project(make_org(other_owner))
    with pytest.raises(Http404):
        runs.start_run(Principal.of_user(other_owner), other, RunRequest(test=stored))
    assert not BrowserRun.objects.exists() and not Job.objects.exists()
