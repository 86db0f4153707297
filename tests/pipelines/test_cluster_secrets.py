"""Cluster secrets: write-only, audited, given to a step's env (``secrets:``) or read from inside
a job only when the cluster policy and the secret's own rules allow the build; redacted from
logs; and the cluster policy checked again when a job is dispatched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs import services as job_services
from bastion.jobs.models import Agent, Job, JobState
from bastion.pipelines import cluster_secrets, policies, services
from bastion.pipelines.models import BuildJob, BuildStep, ClusterSecret
from bastion.pipelines.yaml import CommandStep, PipelineInvalid, parse_pipeline
from tests.api.conftest import ApiClient, Team, make_team
from tests.jobs.helpers import World
from tests.pipelines.helpers import fresh, make_pipeline, steps

VALUE = "tok-5ecret-value-123"
YAML = """
steps:
  - key: deploy
    command: echo "$DEPLOY_TOKEN $APP_KEY"
    secrets:
      - DEPLOY_TOKEN
  - key: mapped
    command: ./x
    secrets:
      APP_KEY: DEPLOY_TOKEN
"""


def _secret(world: World, key: str = "DEPLOY_TOKEN", **kwargs: Any) -> None:
    cluster_secrets.create_secret(world.principal, world.cluster, key=key, value=VALUE, **kwargs)


def _taken(agent: Agent) -> tuple[Job, str]:
    job = dispatch.poll(agent)
    assert job is not None
    accepted = dispatch.accept(agent, job.pk)
    assert accepted.spec.payload["env"]  # the agent's view
    return dispatch.start(job), accepted.token


def _finish(job: Job, capture: Any, exit_status: int = 0) -> None:
    with capture(execute=True):
        dispatch.finish(job, exit_status)


def test_the_yaml_secrets_key_takes_names_or_a_mapping_and_reports_bad_names() -> None:
    parsed = parse_pipeline(YAML, {})
    assert [getattr(s, "secrets", None) for s in parsed.steps] == [
        (("DEPLOY_TOKEN", "DEPLOY_TOKEN"),),
        (("APP_KEY", "DEPLOY_TOKEN"),),
    ]
    with pytest.raises(PipelineInvalid) as bad:
        parse_pipeline("steps:\n  - command: x\n    secrets: [lower-case]\n", {})
    assert "'lower-case' is not a secret name" in " ".join(bad.value.messages())


def test_pipeline_level_secrets_reach_every_command_step_and_a_step_overrides() -> None:
    text = (
        "secrets: {DEPLOY_TOKEN: DEPLOY_TOKEN, APP_KEY: SHARED_KEY}\n"
        "steps:\n  - command: one\n  - command: two\n    secrets: {APP_KEY: OWN_KEY}\n"
    )
    first, second = parse_pipeline(text, {}).steps
    assert isinstance(first, CommandStep) and isinstance(second, CommandStep)
    assert dict(first.secrets) == {"DEPLOY_TOKEN": "DEPLOY_TOKEN", "APP_KEY": "SHARED_KEY"}
    assert dict(second.secrets) == {"DEPLOY_TOKEN": "DEPLOY_TOKEN", "APP_KEY": "OWN_KEY"}
    with pytest.raises(PipelineInvalid) as bad:
        parse_pipeline("secrets: [nope]\nsteps:\n  - command: x\n", {})
    assert "'nope' is not a secret name" in " ".join(bad.value.messages())


def test_secrets_are_write_only_audited_and_validated(world: World) -> None:
    _secret(world, description="deploys", rules=[])
    row = ClusterSecret.objects.get(key="DEPLOY_TOKEN")
    assert VALUE not in row.value_encrypted
    with pytest.raises(ValidationError):
        _secret(world)  # the name is taken
    for bad in ({"key": "lower"}, {"key": "OK_NAME", "value": ""}):
        with pytest.raises(ValidationError):
            cluster_secrets.create_secret(
                world.principal, world.cluster, **{"key": "OK", "value": VALUE, **bad}
            )
    with pytest.raises(ValidationError):
        _secret(world, key="OTHER", rules=[policies.Rule("no-such-pipeline")])
    cluster_secrets.update_secret(
        world.principal, world.cluster, "DEPLOY_TOKEN", value="new-val-99"
    )
    cluster_secrets.delete_secret(world.principal, world.cluster, "DEPLOY_TOKEN")
    events = AuditEvent.objects.filter(action__startswith="cluster.secret_").order_by("seq")
    assert [e.action for e in events] == [
        "cluster.secret_created",
        "cluster.secret_updated",
        "cluster.secret_deleted",
    ]
    assert events[1].changes["value"] == "changed"
    assert all(VALUE not in json.dumps(e.changes) for e in events)
    assert "new-val-99" not in json.dumps([e.changes for e in events])


def test_a_step_gets_its_secrets_in_its_env_only_at_dispatch_and_logs_are_redacted(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    _secret(world)
    build = services.create_build(world.principal, make_pipeline(world, YAML))
    agent = world.agent(name="runner")[0]
    stored = Job.objects.get(pk=BuildJob.objects.filter(build=build).first().job_id)  # type: ignore[union-attr]
    assert VALUE not in json.dumps(stored.payload)  # not even encrypted before dispatch
    job = dispatch.poll(agent)
    assert job is not None
    accepted = dispatch.accept(agent, job.pk)
    env = accepted.spec.payload["env"]
    assert env.get("DEPLOY_TOKEN") == VALUE or env.get("APP_KEY") == VALUE
    job.refresh_from_db()
    assert VALUE not in json.dumps(job.payload)  # the stored env holds it encrypted only
    dispatch.start(job)
    dispatch.append_log(job, 0, f"deploying with {VALUE}\n")
    log = "".join(d for _, d in dispatch.read_log(job))
    assert VALUE not in log and "[REDACTED]" in log


def test_upload_reports_unknown_secret_names_by_step(world: World) -> None:
    with pytest.raises(ValidationError) as bad:
        services.create_build(world.principal, make_pipeline(world, YAML))
    assert "step deploy: no secret DEPLOY_TOKEN on cluster main" in " ".join(bad.value.messages)


def test_a_secret_limited_to_a_branch_fails_the_job_of_another_branch(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    pipeline = make_pipeline(world, YAML)
    _secret(world, rules=[policies.Rule("app", "main")])
    agent = world.agent(name="runner")[0]
    build = services.create_build(world.principal, pipeline, branch="feature/x")
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.poll(agent) is None  # both jobs refused at dispatch
    assert steps(build) == {"deploy": "failed", "mapped": "failed"}
    job = Job.objects.get(pk=BuildJob.objects.filter(build=build).first().job_id)  # type: ignore[union-attr]
    log = "".join(d for _, d in dispatch.read_log(job))
    assert (
        "branch feature/x is not a protected branch of pipeline app on secret DEPLOY_TOKEN" in log
    )
    assert VALUE not in json.dumps(job.payload)


def test_a_policy_tightened_after_the_build_started_stops_its_later_jobs(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    yaml = "steps:\n  - command: ./one\n    key: one\n  - command: ./two\n    key: two\n"
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    agent = world.agent(name="runner")[0]
    first, _ = _taken(agent)  # both jobs exist, the second waits for an agent
    policies.set_policy(world.principal, world.cluster, restricted=True, rules=[])
    _finish(first, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.poll(agent) is None
    assert fresh(build).state == "failed"
    assert steps(build) == {"one": "passed", "two": "failed"}
    second = Job.objects.get(pk=BuildJob.objects.get(build=build, step__key="two").job_id)
    assert (second.state, second.signal_reason) == (JobState.FAILED, "policy_refused")
    log = "".join(d for _, d in dispatch.read_log(second))
    assert "the cluster policy changed since the build started" in log
    reason = BuildStep.objects.get(build=build, key="two").skip_reason
    assert reason.startswith(f"job {second.pk} refused: the cluster policy changed")
    assert AuditEvent.objects.filter(action="job.refused", object_id=str(second.pk)).exists()


def test_a_job_reads_an_allowed_secret_audited_and_redacted_and_gets_404_otherwise(
    world: World,
) -> None:
    pipeline = make_pipeline(world, "steps:\n  - command: ./x\n")
    _secret(world)
    _secret(world, key="MAIN_ONLY", rules=[policies.Rule("app", "main")])
    build = services.create_build(world.principal, pipeline, branch="dev")
    job, token = _taken(world.agent(name="runner")[0])
    client = ApiClient(token)
    path = f"/api/v1/agent/jobs/{job.pk}/secrets/"
    read = client.get(path + "DEPLOY_TOKEN")
    assert read.status == 200 and read.body["value"] == VALUE
    assert client.get(path + "MAIN_ONLY").status == 404  # exists, not for this branch
    assert client.get(path + "NOPE").status == 404
    event = AuditEvent.objects.get(action="cluster.secret_read")
    assert event.changes == {"job": job.pk, "key": "DEPLOY_TOKEN"}
    dispatch.append_log(job, 0, f"got {VALUE}\n")
    assert VALUE not in "".join(d for _, d in dispatch.read_log(job))
    noted = client.call("POST", f"/api/v1/agent/jobs/{job.pk}/annotations", {"body": f"v={VALUE}"})
    assert noted.status == 201 and noted.body["body"] == "v=[REDACTED]"
    assert fresh(build).state == "running"


def test_a_job_of_cluster_a_cannot_read_cluster_b_secrets(world: World) -> None:
    other = job_services.create_cluster(world.principal, world.org, name="other")
    cluster_secrets.create_secret(world.principal, other, key="B_ONLY", value=VALUE)
    services.create_build(world.principal, make_pipeline(world, "steps:\n  - command: ./x\n"))
    job, token = _taken(world.agent(name="runner")[0])
    assert ApiClient(token).get(f"/api/v1/agent/jobs/{job.pk}/secrets/B_ONLY").status == 404
    assert not AuditEvent.objects.filter(action="cluster.secret_read").exists()


@pytest.fixture
def team(db: None) -> Team:
    return make_team("acme")


def test_secrets_api_never_returns_values_and_needs_admins_to_write(team: Team) -> None:
    owner = team.as_owner()
    assert owner.post(f"/organizations/{team.org.slug}/clusters", {"name": "deploy"}).status == 201
    path = f"/organizations/{team.org.slug}/clusters/deploy/secrets"
    body = {"key": "DEPLOY_TOKEN", "value": VALUE, "description": "prod"}
    assert team.as_viewer().post(path, body).status == 403
    created = owner.post(path, body)
    assert created.status == 201, created.body
    assert "value" not in created.body and created.body["updated_by"]
    assert owner.post(path, {**body, "key": "bad name"}).status == 400
    listed = team.as_viewer().get(path)
    assert [s["key"] for s in listed.body] == ["DEPLOY_TOKEN"]
    assert VALUE not in json.dumps(listed.body)
    assert team.as_viewer().get(path + "/DEPLOY_TOKEN").body["description"] == "prod"
    patched = owner.call("PATCH", path + "/DEPLOY_TOKEN", {"value": "other-value-1"})
    assert patched.status == 200 and "value" not in patched.body
    assert owner.get(path + "/MISSING").status == 404
    assert owner.call("DELETE", path + "/DEPLOY_TOKEN").status == 204
    assert owner.call("DELETE", path + "/DEPLOY_TOKEN").status == 404
    stranger = make_team("globex").as_owner()
    assert stranger.get(path).status == 404


def test_cluster_page_shows_secrets_without_values_and_admins_add_them(world: World) -> None:
    from tests.web.conftest import login_client

    _secret(world, description="the deploy token")
    client = login_client(world.owner)
    page = client.get(f"/o/{world.org.slug}/settings/clusters/{world.cluster.name}/")
    text = page.content.decode()
    assert page.status_code == 200 and "DEPLOY_TOKEN" in text and "the deploy token" in text
    assert VALUE not in text
    url = f"/o/{world.org.slug}/settings/clusters/{world.cluster.name}/secrets/"
    added = client.post(url, {"key": "NEW_ONE", "value": "fresh-value-1", "rules": "app: main"})
    assert added.status_code == 302
    assert ClusterSecret.objects.filter(key="NEW_ONE").exists() is False  # no pipeline app yet
    added = client.post(url, {"key": "NEW_ONE", "value": "fresh-value-1", "rules": ""})
    assert ClusterSecret.objects.filter(key="NEW_ONE").exists()
    deleted = client.post(url + "NEW_ONE/delete/")
    assert deleted.status_code == 302 and not ClusterSecret.objects.filter(key="NEW_ONE").exists()
