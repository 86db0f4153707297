"""The pipelines API through the whole middleware stack, with API tokens of each role."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs import services as job_services
from bastion.pipelines.models import Build, BuildState, Pipeline
from tests.api.conftest import ApiClient, Team, make_team
from tests.pipelines.helpers import Runner

BASE = "/organizations/acme/pipelines"
YAML = """
steps:
  - command: echo build
    key: build
  - block: Ship?
    key: ship
    fields:
      - select: Where
        key: where
        options: [{label: Staging, value: staging}]
  - command: echo "deploy to $$WHERE"
    key: deploy
"""


@pytest.fixture
def team(db: None) -> Team:
    team = make_team("acme")
    job_services.create_cluster(Principal.of_user(team.owner), team.org, name="default")
    return team


@pytest.fixture
def owner(team: Team) -> ApiClient:
    return team.as_owner()


def test_invalid_yaml_is_a_400_naming_the_line_and_nothing_is_stored(
    team: Team, owner: ApiClient
) -> None:
    reply = owner.post(BASE, {"slug": "app", "yaml": "steps:\n  - command: [unclosed\n"})
    assert reply.status == 400
    assert any("line 3" in m for m in reply.body["errors"]["yaml"])
    reply = owner.post(
        BASE, {"slug": "app", "yaml": "steps:\n  - command: x\n    key: a\n    colour: red\n"}
    )
    assert reply.status == 400
    assert reply.body["errors"]["yaml"] == [
        'steps[0] (key "a"): unknown key `colour` for a command step'
    ]
    reply = owner.post(
        BASE,
        {
            "slug": "app",
            "yaml": "steps:\n  - {command: x, key: a, depends_on: b}\n  - {command: y, key: b, depends_on: a}\n",
        },
    )
    assert reply.status == 400 and "cycle" in reply.body["errors"]["yaml"][0]
    assert not Pipeline.objects.exists()


def test_pipeline_crud_and_build_lifecycle(
    team: Team, owner: ApiClient, django_capture_on_commit_callbacks: Any
) -> None:
    created = owner.post(BASE, {"slug": "app", "yaml": YAML, "repository": "https://git.test/app"})
    assert created.status == 201 and created.body["cluster"] == "default"
    assert created.body["warnings"] == []
    noted = owner.post(
        BASE,
        {"slug": "noted", "yaml": "steps:\n  - command: x\n    key: k\n    if_changed: src/**\n"},
    )
    assert noted.body["warnings"] == [
        'steps[0] (key "k"): `if_changed` is accepted but not acted on yet'
    ]
    assert owner.get(f"{BASE}/app").body["last_build"] is None
    patched = owner.patch(f"{BASE}/app", {"default_branch": "trunk"})
    assert patched.status == 200 and patched.body["default_branch"] == "trunk"

    reply = owner.post(f"{BASE}/app/builds", {"commit": "abc", "env": {"GREETING": "hi"}})
    assert reply.status == 201
    build = reply.body
    assert (build["number"], build["branch"], build["state"]) == (1, "trunk", "running")
    assert [s["state"] for s in build["steps"]] == ["running", "waiting", "waiting"]
    assert build["steps"][0]["jobs"][0]["state"] == "scheduled"

    world_agent = Runner.of_cluster(team, django_capture_on_commit_callbacks)
    world_agent.run()
    detail = owner.get(f"{BASE}/app/builds/1").body
    assert detail["state"] == "blocked" and detail["steps"][1]["state"] == "blocked"

    bad = owner.post(f"{BASE}/app/builds/1/steps/ship/unblock", {"fields": {"where": "mars"}})
    assert bad.status == 400 and "where" in bad.body["errors"]
    unblocked = owner.post(
        f"{BASE}/app/builds/1/steps/ship/unblock", {"fields": {"where": "staging"}}
    )
    assert unblocked.status == 200 and unblocked.body["meta_data"] == {"where": "staging"}
    failed = world_agent.run(exit_status=7)
    assert owner.get(f"{BASE}/app/builds/1").body["state"] == "failed"

    job_id = owner.get(f"{BASE}/app/builds/1").body["steps"][2]["jobs"][0]["id"]
    retried = owner.post(f"{BASE}/app/builds/1/jobs/{job_id}/retry")
    assert retried.status == 200 and retried.body["state"] == "running"
    assert [j["attempt"] for j in retried.body["steps"][2]["jobs"]] == [0, 1]
    assert failed.payload["env"]["GREETING"] == "hi"
    canceled = owner.post(f"{BASE}/app/builds/1/cancel")
    assert canceled.status == 200 and canceled.body["state"] == "canceled"
    assert owner.post(f"{BASE}/app/builds/1/cancel").status == 400

    listed = owner.get(BASE).body
    assert [(p["slug"], (p["last_build"] or {}).get("state")) for p in listed] == [
        ("app", "canceled"), ("noted", None),
    ]  # fmt: skip
    assert [b["number"] for b in owner.get(f"{BASE}/app/builds").body] == [1]
    actions = list(
        AuditEvent.objects.filter(organization=team.org, action__startswith="build.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "build.create",
        "build.unblock",
        "build.finish",
        "build.retry_job",
        "build.cancel",
        "build.finish",
    ]
    assert owner.delete(f"{BASE}/app").status == 204
    assert not Build.objects.exists()
    # Who changed and who deleted the pipeline, and what changed (the file only as "changed").
    changed = AuditEvent.objects.get(organization=team.org, action="pipeline.update")
    assert changed.changes == {"default_branch": {"before": "main", "after": "trunk"}}
    deleted = AuditEvent.objects.get(organization=team.org, action="pipeline.delete")
    assert deleted.changes == {"builds": 1, "jobs_canceled": 0}
    assert changed.actor_label == deleted.actor_label == "token:owner token"


def test_roles_viewer_reads_member_builds_admin_edits(team: Team, owner: ApiClient) -> None:
    assert owner.post(BASE, {"slug": "app", "yaml": YAML}).status == 201
    viewer = team.as_viewer()
    member = ApiClient(user=team.member)
    assert viewer.get(f"{BASE}/app").status == 200
    assert viewer.post(f"{BASE}/app/builds", {}).status == 403
    assert member.patch(f"{BASE}/app", {"name": "x"}).status == 403
    assert member.post(f"{BASE}/app/builds", {}).status == 201
    assert Build.objects.get().state == BuildState.RUNNING
    other = make_team("other")
    assert other.as_owner().get(f"{BASE}/app").status == 404
    assert other.as_owner().get("/organizations/other/pipelines/app").status == 404


def test_build_on_a_missing_variable_is_a_400(team: Team, owner: ApiClient) -> None:
    yaml = "steps:\n  - command: deploy ${TARGET?say where}\n"
    assert owner.post(BASE, {"slug": "app", "yaml": yaml}).status == 201
    reply = owner.post(f"{BASE}/app/builds", {})
    assert reply.status == 400 and "TARGET" in reply.body["errors"]["yaml"][0]
    assert not Build.objects.exists()
    ok = owner.post(f"{BASE}/app/builds", {"env": {"TARGET": "prod"}})
    assert ok.status == 201
