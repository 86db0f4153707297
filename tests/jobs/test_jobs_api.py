"""The people-facing jobs API: clusters, agent tokens, agents, jobs, cancel and logs."""

from __future__ import annotations

import pytest

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs.models import AgentToken, Cluster, Job, JobState
from tests.api.conftest import ApiClient, make_team

pytestmark = pytest.mark.django_db


def test_clusters_tokens_and_agents() -> None:
    team = make_team("acme")
    admin = team.as_admin()
    reply = admin.post("/organizations/acme/clusters", {"name": "deploy", "description": "prod"})
    assert reply.status == 201 and reply.body["name"] == "deploy"
    assert admin.post("/organizations/acme/clusters", {"name": "deploy"}).status == 400
    names = [c["name"] for c in admin.get("/organizations/acme/clusters").body]
    assert "deploy" in names
    reply = admin.post(
        "/organizations/acme/clusters/deploy/agent-tokens",
        {"description": "ci", "expires_in_days": 7},
    )
    assert reply.status == 201 and reply.body["token"].startswith("bstagt_")
    stored = AgentToken.objects.get(pk=reply.body["id"])
    assert reply.body["token"] not in (stored.token_hash, stored.prefix)
    agent = dispatch.register_agent(reply.body["token"], name="a1", tags={}).agent
    listed = team.as_viewer().get("/organizations/acme/agents").body
    assert [a["id"] for a in listed] == [agent.pk]
    viewer = team.as_viewer()
    assert viewer.post("/organizations/acme/clusters", {"name": "x"}).status == 403
    assert viewer.post("/organizations/acme/clusters/deploy/agent-tokens", {}).status == 403
    assert not Cluster.objects.filter(name="x").exists()


def test_jobs_create_list_get_cancel_and_log() -> None:
    team = make_team("acme")
    owner = team.as_owner()
    assert owner.post("/organizations/acme/clusters", {"name": "main"}).status == 201
    reply = owner.post(
        "/organizations/acme/jobs",
        {"cluster": "main", "kind": "command", "payload": {"command": "echo hi"}, "timeout_s": 60},
    )
    assert reply.status == 201, reply.body
    job_id = reply.body["id"]
    assert reply.body["state"] == "scheduled" and reply.body["timeout_s"] == 60
    bad = owner.post("/organizations/acme/jobs", {"cluster": "main", "kind": "teleport"})
    assert bad.status == 400 and "kind" in bad.body["errors"]
    assert owner.post("/organizations/acme/jobs", {"cluster": "nope", "kind": "scan"}).status == 404
    viewer = team.as_viewer()
    assert [j["id"] for j in viewer.get("/organizations/acme/jobs?state=scheduled").body] == [
        job_id
    ]
    assert viewer.get(f"/jobs/{job_id}").body["kind"] == "command"
    assert viewer.post(f"/jobs/{job_id}/cancel").status == 403
    assert viewer.post(
        "/organizations/acme/jobs", {"cluster": "main", "kind": "command"}
    ).status in {400, 403}
    job = Job.objects.get(pk=job_id)
    agent = dispatch.register_agent(owner_token_for(job), name="a", tags={"queue": "default"}).agent
    assert dispatch.poll(agent) == job
    accepted = dispatch.accept(agent, job.pk)
    dispatch.start(job)
    dispatch.append_log(job, 0, "hello\n")
    log = viewer.get(f"/jobs/{job_id}/log").body
    assert log["chunks"] == [{"seq": 0, "data": "hello\n"}] and log["state"] == "running"
    reply = owner.post(f"/jobs/{job_id}/cancel")
    assert (
        reply.status == 200 and reply.body["cancel_requested"] and reply.body["state"] == "running"
    )
    assert dispatch.job_status(job).cancel_requested
    dispatch.finish(dispatch.job_for_token(accepted.token, job.pk), 143, "cancel")
    assert viewer.get(f"/jobs/{job_id}").body["state"] == JobState.CANCELED
    assert owner.post(f"/jobs/{job_id}/cancel").status == 400
    assert AuditEvent.objects.filter(action="job.cancel", object_id=str(job_id)).count() == 1


def owner_token_for(job: Job) -> str:
    from bastion.jobs import services

    return services.create_agent_token(
        Principal.system("test", organization=job.organization), job.cluster
    ).plaintext


def test_other_organizations_jobs_are_404() -> None:
    team_a, team_b = make_team("aaa"), make_team("bbb")
    assert team_b.as_owner().post("/organizations/bbb/clusters", {"name": "main"}).status == 201
    job_b = (
        team_b.as_owner()
        .post(
            "/organizations/bbb/jobs",
            {"cluster": "main", "kind": "command", "payload": {"command": "x"}},
        )
        .body["id"]
    )
    intruder: ApiClient = team_a.as_owner()
    for path in (f"/jobs/{job_b}", f"/jobs/{job_b}/log"):
        assert intruder.get(path).status == 404
    assert intruder.post(f"/jobs/{job_b}/cancel").status == 404
    assert intruder.get("/organizations/bbb/jobs").status == 404
    assert Job.objects.get(pk=job_b).state == JobState.SCHEDULED
