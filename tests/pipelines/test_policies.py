"""Cluster policies: a restricted deploy cluster runs only protected branches of the pipelines
it allows; refused jobs fail with the reason in their log and never reach its agents."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs import services as job_services
from bastion.jobs.models import Job, JobState
from bastion.pipelines import policies, services
from bastion.pipelines.models import BuildJob, BuildStep
from tests.api.conftest import Team, make_team
from tests.jobs.helpers import World
from tests.pipelines.helpers import fresh, steps

YAML = "steps:\n  - key: deploy\n    command: ./deploy.sh\n"
POLICY = "/organizations/{org}/clusters/deploy/pipeline-policy"


def _deploy_world(world: World) -> tuple[Any, Any]:
    deploy = job_services.create_cluster(world.principal, world.org, name="deploy")
    token = job_services.create_agent_token(world.principal, deploy).plaintext
    agent = dispatch.register_agent(token, name="deployer", tags={}).agent
    return deploy, agent


def _pipeline(world: World, slug: str, cluster: Any) -> Any:
    return services.create_pipeline(
        world.principal, world.org, slug=slug, yaml=YAML, cluster=cluster
    )


def test_restricted_cluster_runs_only_protected_branches_of_allowed_pipelines(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    deploy, deployer = _deploy_world(world)
    ci_agent, _ = world.agent(name="ci")
    app, other = _pipeline(world, "app", deploy), _pipeline(world, "other", deploy)
    policies.set_policy(
        world.principal, deploy, restricted=True,
        rules=[policies.Rule("app", "main release/*")],
    )  # fmt: skip
    allowed = [services.create_build(world.principal, app, branch=b) for b in ("main", "release/2")]
    feature = services.create_build(world.principal, app, branch="feature/x")
    stranger = services.create_build(world.principal, other, branch="main")
    # Only the allowed builds' jobs reach the deploy cluster's agent; the CI agent sees nothing.
    assert dispatch.poll(ci_agent) is None
    taken = []
    for _ in range(3):
        job = dispatch.poll(deployer)
        if job is None:
            break
        dispatch.accept(deployer, job.pk)
        dispatch.start(job)
        with django_capture_on_commit_callbacks(execute=True):
            dispatch.finish(job, 0)
        taken.append(job.pk)
    expected = {BuildJob.objects.get(build=b).job_id for b in allowed}
    assert set(taken) == expected
    assert [fresh(b).state for b in allowed] == ["passed", "passed"]
    for build, reason in (
        (feature, "branch feature/x is not a protected branch of pipeline app on cluster deploy"),
        (stranger, "pipeline other is not allowed on cluster deploy"),
    ):
        assert fresh(build).state == "failed" and steps(build) == {"deploy": "failed"}
        job = Job.objects.get(pk=BuildJob.objects.get(build=build).job_id)
        assert (job.state, job.exit_status, job.signal_reason, job.agent_id) == (
            JobState.FAILED, -1, "policy_refused", None,
        )  # fmt: skip
        log = "".join(data for _, data in dispatch.read_log(job))
        assert "refused by the cluster policy" in log and reason in log
        assert reason in BuildStep.objects.get(build=build).skip_reason  # shown on the step
    assert AuditEvent.objects.filter(action="job.refused").count() == 2


def test_unrestricted_cluster_runs_every_pipeline(world: World) -> None:
    deploy, deployer = _deploy_world(world)
    app = _pipeline(world, "app", deploy)
    policies.set_policy(
        world.principal, deploy, restricted=False, rules=[policies.Rule("app", "main")]
    )
    services.create_build(world.principal, app, branch="feature/y")
    assert dispatch.poll(deployer) is not None


@pytest.fixture
def team(db: None) -> Team:
    return make_team("acme")


def test_policy_api_reads_replaces_validates_and_audits(team: Team) -> None:
    owner = team.as_owner()
    created = owner.post(f"/organizations/{team.org.slug}/clusters", {"name": "deploy"})
    assert created.status == 201, created.body
    deploy = job_services.get_cluster_for(_owner(team), team.org, "deploy")
    services.create_pipeline(_owner(team), team.org, slug="app", yaml=YAML, cluster=deploy)
    path = POLICY.format(org=team.org.slug)
    assert owner.get(path).body == {"cluster": "deploy", "restricted": False, "rules": []}
    body = {"restricted": True, "rules": [{"pipeline": "app", "branches": "main  release/*"}]}
    assert team.as_viewer().call("PUT", path, body).status == 403
    bad = owner.call("PUT", path, {"restricted": True, "rules": [{"pipeline": "nope"}]})
    assert bad.status == 400 and "nope" in str(bad.body)
    assert owner.get(path).body["restricted"] is False  # nothing changed
    saved = owner.call("PUT", path, body)
    assert saved.status == 200, saved.body
    assert saved.body["rules"] == [{"pipeline": "app", "branches": "main release/*"}]
    assert team.as_viewer().get(path).body == saved.body
    event = AuditEvent.objects.filter(action="cluster.policy").latest("seq")
    assert event.changes["restricted"] == {"before": False, "after": True}


def _owner(team: Team) -> Principal:
    return Principal.of_user(team.owner)


def test_cluster_page_shows_and_edits_the_policy(world: World) -> None:
    from tests.web.conftest import login_client, viewer_of

    deploy, _ = _deploy_world(world)
    _pipeline(world, "app", deploy)
    page = f"/o/{world.org.slug}/settings/clusters/deploy/"
    owner = login_client(world.owner)
    html = owner.get(page).content.decode()
    assert "Pipeline policy" in html and "Open to every pipeline" in html
    form = page + "pipeline-policy/"
    saved = owner.post(form, {"restricted": "on", "rules": "app: main release/*\n"})
    assert saved.status_code == 302
    html = owner.get(page).content.decode()
    assert "Restricted" in html and "release/*" in html
    bad = owner.post(form, {"restricted": "on", "rules": "ghost: main"}, follow=True)
    assert "was not changed" in bad.content.decode() and "ghost" in bad.content.decode()
    assert policies.policy_of(world.principal, deploy).rules == [
        policies.Rule("app", "main release/*")
    ]
    assert login_client(viewer_of(world.org)).post(form, {"rules": ""}).status_code == 403
