"""The editor's and set-up pages' writes over the API: suites and environments edited, secrets
set and removed (names only come back), a run cancelled, a suite's pass rate, a module's users
and the re-run of the outdated ones."""

from __future__ import annotations

import json

import pytest

from bastion.browser import runs, services
from bastion.browser.models import BrowserRun, Environment, Suite
from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs import services as job_services
from bastion.jobs.models import Job, JobState
from tests.api.conftest import make_team
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_suites_environments_secrets_cancel_and_module_reruns() -> None:
    team = make_team("acme")
    owner = Principal.of_user(team.owner)
    project = make_project(team.org, slug="shop")
    job_services.create_cluster(owner, team.org, name="default")
    api, viewer = team.as_owner(), team.as_viewer()
    base = "/organizations/acme/projects/shop/browser"
    services.save_test(owner, project, {"name": "login", "import_only": True, "steps": []})
    for name in ("buy", "browse"):
        services.save_test(owner, project, {"name": name, "steps": [{"module": "login"}]})
    services.create_suite(owner, project, slug="all", tests=["buy"])
    services.create_environment(
        owner, project, slug="staging", name="Staging", base_url="https://s.example"
    )

    edited = api.call(
        "PUT",
        base + "/suites/all",
        {"name": "All", "tests": ["browse", "buy"], "concurrency": 2, "variables": {"a": "1"}},
    )
    assert edited.status == 200, edited.body
    assert edited.body["tests"] == ["browse", "buy"] and edited.body["concurrency"] == 2
    bad = api.call("PUT", base + "/suites/all", {"tests": ["nope"], "concurrency": 1})
    assert bad.status == 400
    assert [e.test.slug for e in Suite.objects.get(slug="all").entries.all()] == ["browse", "buy"]
    assert viewer.call("PUT", base + "/suites/all", {"tests": []}).status == 403

    env = api.call("PUT", base + "/environments/staging", {"base_url": "ftp://x", "variables": {}})
    assert env.status == 400
    env = api.call(
        "PUT",
        base + "/environments/staging",
        {"name": "Stage", "base_url": "https://stage.example", "variables": {"u": "ada"}},
    )
    assert env.status == 200 and env.body["base_url"] == "https://stage.example"
    secret = api.post(base + "/environments/staging/secrets", {"name": "pw", "value": "s3cr3t!"})
    assert secret.status == 200 and secret.body == {"secrets": ["pw"]}
    shown = api.get(base + "/environments/staging")
    assert shown.body["secrets"] == ["pw"] and "s3cr3t" not in json.dumps(shown.body)
    assert "s3cr3t" not in Environment.objects.get(slug="staging").secrets_encrypted
    assert (
        viewer.post(base + "/environments/staging/secrets", {"name": "x", "value": "y"}).status
        == 403
    )
    assert api.delete(base + "/environments/staging/secrets?name=pw").body == {"secrets": []}
    assert api.delete(base + "/environments/staging/secrets?name=pw").status == 400
    assert api.post(base + "/tests/buy/secrets", {"name": "card", "value": "4242"}).status == 200
    assert api.get(base + "/tests/buy/secrets").body == {"secrets": ["card"]}
    assert "4242" not in json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))

    users = api.get(base + "/tests/login/users").body
    assert [(u["test"], u["outdated"]) for u in users] == [("browse", True), ("buy", True)]
    rerun = api.post(base + "/tests/login/rerun-outdated")
    assert rerun.status == 201 and sorted(r["test"] for r in rerun.body) == ["browse", "buy"]
    assert all(not u["outdated"] for u in api.get(base + "/tests/login/users").body)
    assert api.post(base + "/tests/login/rerun-outdated").status == 400

    run_id = rerun.body[0]["id"]
    canceled = api.post(base + f"/runs/{run_id}/cancel")
    assert canceled.status == 200, canceled.body
    assert Job.objects.get(origin=f"browser.run:{run_id}").state == JobState.CANCELED
    assert BrowserRun.objects.get(pk=run_id).status == "canceled"
    assert api.post(base + f"/runs/{run_id}/cancel").status == 400
    assert AuditEvent.objects.filter(action="browser.run.cancel").count() == 1

    runs.start_run(owner, project, runs.RunRequest(suite=Suite.objects.get(slug="all")))
    stats = api.get(base + "/suites/all/stats").body
    assert stats["finished"] == 0 and stats["pass_rate"] is None and len(stats["runs"]) == 1
