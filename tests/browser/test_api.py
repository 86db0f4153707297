"""The browser-tests API: tests in YAML and JSON, suites, environments, runs and results, through
the real middleware stack with an API token."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bastion.browser import runs
from bastion.browser.models import StoredTest
from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs import services as job_services
from bastion.jobs.artifacts import upload_artifact
from bastion.jobs.models import Job
from tests.api.conftest import make_team
from tests.factories import make_project

pytestmark = pytest.mark.django_db(transaction=True)

YAML = """\
name: Sign in
start_url: /login
steps:
  - type: "#user"
    value: ada
  - click: "#go"
"""


def test_tests_suites_environments_runs_and_results() -> None:
    team = make_team("acme")
    owner = Principal.of_user(team.owner)
    make_project(team.org, slug="shop")
    job_services.create_cluster(owner, team.org, name="default")
    api = team.as_owner()
    base = "/organizations/acme/projects/shop/browser"

    created = api.post(base + "/tests", {"yaml": YAML})
    assert created.status == 201, created.body
    assert created.body["slug"] == "sign-in" and created.body["steps"] == 2
    assert api.post(base + "/tests", {"yaml": YAML}).status == 400  # exists: use PUT
    as_json = {"name": "Home", "start_url": "/", "steps": [{"assert_title": "Shop"}]}
    assert api.post(base + "/tests", {"definition": as_json, "slug": "home"}).status == 201

    bad = api.post(base + "/tests", {"definition": {"name": "x", "steps": [{"click": ""}]}})
    assert bad.status == 400
    assert bad.body["errors"]["definition"][0] == 'step 1 (click): field "target": required'
    assert api.post(base + "/tests", {"yaml": "name: [unclosed"}).status == 400

    replaced = api.call("PUT", base + "/tests/home", {"definition": {**as_json, "name": "Home!"}})
    assert replaced.status == 200 and replaced.body["version"] == 2
    detail = api.get(base + "/tests/sign-in").body
    assert "target: css=#go" in detail["yaml"] and detail["history"]["runs"] == 0
    assert [t["slug"] for t in api.get(base + "/tests").body] == ["home", "sign-in"]

    suite = api.post(
        base + "/suites", {"slug": "smoke", "tests": ["sign-in", "home"], "concurrency": 2}
    )
    assert suite.status == 201 and suite.body["tests"] == ["sign-in", "home"]
    assert api.post(base + "/suites", {"slug": "x", "tests": ["nope"]}).status == 400
    env = api.post(
        base + "/environments",
        {"slug": "staging", "base_url": "http://127.0.0.1:9", "variables": {"pw": "s3cret"}},
    )
    assert env.status == 201 and env.body["variables"] == ["pw"]
    assert "s3cret" not in json.dumps(api.get(base + "/environments").body)

    started = api.post(base + "/runs", {"suite": "smoke", "environment": "staging"})
    assert started.status == 201, started.body
    run_id, jobs = started.body["id"], started.body["jobs"]
    assert len(jobs) == 2 and started.body["status"] == "queued"
    assert Job.objects.get(pk=jobs[0]).payload["base_url"] == "http://127.0.0.1:9"

    cluster = job_services.get_cluster_for(owner, team.org, "default")
    token = job_services.create_agent_token(owner, cluster).plaintext
    agent = dispatch.register_agent(token, name="a", tags={"queue": "default"}).agent
    for _ in jobs:
        job = dispatch.poll(agent)
        assert job is not None
        dispatch.accept(agent, job.pk)
        dispatch.start(job)
        job.refresh_from_db()
        results = [
            {"test": slug, "status": "passed", "started_at": "", "duration_ms": 5.0, "steps": []}
            for slug in job.payload["slugs"]
        ]
        upload = SimpleUploadedFile("r", json.dumps(results).encode())
        upload_artifact(job, runs.RESULTS_FILE, upload)
        dispatch.finish(job, 0)

    run = api.get(base + f"/runs/{run_id}").body
    assert run["status"] == "passed" and run["suite"] == "smoke"
    assert sorted(r["slug"] for r in run["results"]) == ["home", "sign-in"]
    assert [r["id"] for r in api.get(base + "/runs").body] == [run_id]
    history = api.get(base + "/tests/home").body["history"]
    assert history == {"runs": 1, "passed": 1, "pass_rate": 100.0, "flaky": False}

    assert api.delete(base + "/tests/home").status == 204
    assert not StoredTest.objects.filter(slug="home").exists()
    assert api.get(base + "/tests/home").status == 404
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"browser.test.create", "browser.test.update", "browser.test.delete"} <= actions
    assert {"browser.suite.create", "browser.run.start", "browser.run.finish"} <= actions

    viewer = team.as_viewer()
    assert viewer.get(base + "/tests").status == 200
    assert viewer.post(base + "/runs", {"test": "sign-in"}).status == 403
