"""The build scheduler on the real database, with the agent played through dispatch calls."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs.models import Job, JobState
from bastion.pipelines import scheduler, services
from bastion.pipelines.environment import condition_context, interpolation_env
from bastion.pipelines.models import (
    Build,
    BuildJob,
    BuildState,
    BuildStep,
    Pipeline,
    StepState,
)
from tests.jobs.helpers import World
from tests.pipelines.helpers import Runner, fresh, job_of, make_pipeline, steps

FAN = """
steps:
  - command: echo build
    key: build
  - command: echo "test $$SHARD"
    key: test
    parallelism: 3
    depends_on: build
  - command: echo lint
    key: lint
    depends_on: build
  - command: echo done
    key: done
    depends_on: [test, lint]
"""


def test_fan_out_fan_in_follows_depends_on(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, FAN), branch="main")
    assert build.state == BuildState.RUNNING and build.number == 1
    assert steps(build) == {
        "build": "running",
        "test": "waiting",
        "lint": "waiting",
        "done": "waiting",
    }
    first = runner.run()
    assert first.label == "echo build"
    assert steps(build)["test"] == "running" and steps(build)["lint"] == "running"
    middle = [runner.run() for _ in range(4)]
    assert sorted(j.label for j in middle) == sorted(
        ["echo lint", *[f'echo "test $SHARD" ({i}/3)' for i in (1, 2, 3)]]
    )
    assert runner.run().label == "echo done"
    assert fresh(build).state == BuildState.PASSED and fresh(build).finished_at is not None
    assert runner.take() is None
    actions = set(
        AuditEvent.objects.filter(organization=world.org).values_list("action", flat=True)
    )
    assert {"pipeline.create", "build.create", "build.finish", "job.create"} <= actions


def test_job_environment_has_buildkite_and_bastion_variables(world: World, runner: Runner) -> None:
    pipeline = make_pipeline(world, FAN, repository="git@example.test:app.git")
    build = services.create_build(
        world.principal, pipeline, branch="feature/x", commit="abc123", message="hi"
    )
    job = runner.take()
    assert job is not None
    env = job.payload["env"]
    assert env["BUILDKITE_BRANCH"] == env["BASTION_BRANCH"] == "feature/x"
    assert env["BUILDKITE_COMMIT"] == "abc123" and env["BUILDKITE_MESSAGE"] == "hi"
    assert env["BUILDKITE_BUILD_NUMBER"] == str(build.number)
    # The job's own id is set by the agent (BASTION_JOB_ID, BUILDKITE_JOB_ID): the jobs of a
    # fan-out are inserted in one statement, before their ids are known.
    assert "BUILDKITE_JOB_ID" not in env and env["BUILDKITE_STEP_KEY"] == "build"
    assert (
        env["BUILDKITE_PIPELINE_SLUG"] == "app"
        and env["BUILDKITE_REPO"] == "git@example.test:app.git"
    )
    assert env["CI"] == "true" and env["BUILDKITE_RETRY_COUNT"] == "0"
    assert job.origin == f"pipelines.job:{job_of(build, 'build').pk}"
    assert job.payload["command"] == "set -e\necho build"


PEOPLE = """
env:
  BUILDKITE_BUILD_CREATOR_EMAIL: pipeline@example.test
  BUILDKITE_PULL_REQUEST_LABELS: deploy
steps:
  - command: echo "$$BUILDKITE_BUILD_CREATOR"
    key: who
    env:
      BUILDKITE_SOURCE: webhook
      BUILDKITE_PULL_REQUEST: "12"
      BUILDKITE_PULL_REQUEST_REPO: https://evil.test/fork.git
"""


def _env(build: Build, key: str = "who") -> dict[str, str]:
    env: dict[str, str] = job_of(build, key).job.payload["env"]
    return env


def test_job_environment_names_the_creator_and_no_pull_request(world: World) -> None:
    type(world.owner).objects.filter(pk=world.owner.pk).update(
        email="boss@example.test", first_name="Ada", last_name="Boss"
    )
    pipeline = make_pipeline(world, PEOPLE)
    # The build's, the pipeline's and the step's env cannot change what the server sets.
    forged = {"BUILDKITE_BUILD_CREATOR": "mallory", "BUILDKITE_BUILD_AUTHOR": "mallory",
              "BUILDKITE_PULL_REQUEST_DRAFT": "true", "OTHER": "kept"}  # fmt: skip
    env = _env(services.create_build(world.principal, pipeline, env=forged))
    named = ("BUILDKITE_BUILD_", "BUILDKITE_PULL", "BUILDKITE_SOURCE")
    assert {k: v for k, v in env.items() if k.startswith(named)} == {
        "BUILDKITE_BUILD_ID": env["BUILDKITE_BUILD_ID"],
        "BUILDKITE_BUILD_NUMBER": "1",
        "BUILDKITE_BUILD_AUTHOR": "",  # no commit author is known for a build of the API
        "BUILDKITE_BUILD_AUTHOR_EMAIL": "",
        "BUILDKITE_BUILD_CREATOR": "Ada Boss",
        "BUILDKITE_BUILD_CREATOR_EMAIL": "boss@example.test",
        "BUILDKITE_SOURCE": "api",
        "BUILDKITE_PULL_REQUEST": "false",
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "",
        "BUILDKITE_PULL_REQUEST_REPO": "",
    }  # fmt: skip
    assert env["OTHER"] == "kept"
    # The same values in ``$VAR`` interpolation and ``build.env`` of ``if``.
    build = fresh(services.create_build(world.principal, pipeline, env=forged))
    assert interpolation_env(build)["BUILDKITE_BUILD_CREATOR"] == "Ada Boss"
    assert "BUILDKITE_PULL_REQUEST_DRAFT" not in condition_context(build)["build.env"]
    # A user without a full name is named by the username; one without email has it blank.
    type(world.owner).objects.filter(pk=world.owner.pk).update(
        first_name="", last_name="", email=""
    )
    env = _env(services.create_build(world.principal, pipeline))
    assert env["BUILDKITE_BUILD_CREATOR"] == world.owner.username
    assert env["BUILDKITE_BUILD_CREATOR_EMAIL"] == ""


def test_job_environment_of_webhook_builds_names_the_author_and_the_pull_request(
    world: World,
) -> None:
    from tests.pipelines.test_webhooks import github, github_draft_pull_request, github_push, gitlab

    pipeline = make_pipeline(world, PEOPLE)
    secret = services.rotate_webhook_secret(world.principal, pipeline)
    author = {"name": "Alice A", "email": "alice@example.test", "username": "alice"}
    assert github(pipeline, secret, "push", github_push(author)).status_code == 201
    pr = github_draft_pull_request(["deploy", "needs review"])
    assert github(pipeline, secret, "pull_request", pr).status_code == 201
    mr = {"user": {"username": "carol"}, "labels": [],
          "object_attributes": {"action": "open", "iid": 4, "source_branch": "f",
          "target_branch": "release", "title": "MR", "draft": False,
          "source": {"git_http_url": "https://gl.test/team/a.git"},
          "last_commit": {"id": "d" * 40,
                          "author": {"name": "Dan", "email": "dan@example.test"}}}}  # fmt: skip
    assert gitlab(pipeline, secret, "Merge Request Hook", mr).status_code == 201
    push_env, pr_env, mr_env = (
        _env(b) for b in Build.objects.filter(pipeline=pipeline).order_by("number")
    )
    # A webhook build has no Bastion creator: Buildkite names the (unverified) commit author.
    assert (push_env["BUILDKITE_BUILD_AUTHOR"], push_env["BUILDKITE_BUILD_AUTHOR_EMAIL"]) == (
        "Alice A", "alice@example.test",
    )  # fmt: skip
    assert (push_env["BUILDKITE_BUILD_CREATOR"], push_env["BUILDKITE_BUILD_CREATOR_EMAIL"]) == (
        "Alice A", "alice@example.test",
    )  # fmt: skip
    assert (
        push_env["BUILDKITE_SOURCE"] == "webhook" and push_env["BUILDKITE_PULL_REQUEST"] == "false"
    )
    assert "BUILDKITE_PULL_REQUEST_LABELS" not in push_env  # the pipeline's env set it: dropped
    # A GitHub pull request event names its opener's login only.
    assert (
        pr_env["BUILDKITE_BUILD_AUTHOR"] == "bob" and pr_env["BUILDKITE_BUILD_AUTHOR_EMAIL"] == ""
    )
    assert {k: v for k, v in pr_env.items() if k.startswith("BUILDKITE_PULL_REQUEST")} == {
        "BUILDKITE_PULL_REQUEST": "8",
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "main",
        "BUILDKITE_PULL_REQUEST_REPO": "https://g.test/fork/a.git",
        "BUILDKITE_PULL_REQUEST_DRAFT": "true",
        "BUILDKITE_PULL_REQUEST_LABELS": "deploy,needs review",
    }
    # Not a draft: no BUILDKITE_PULL_REQUEST_DRAFT at all (Buildkite); no labels: an empty list.
    assert {k: v for k, v in mr_env.items() if k.startswith("BUILDKITE_PULL_REQUEST")} == {
        "BUILDKITE_PULL_REQUEST": "4",
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "release",
        "BUILDKITE_PULL_REQUEST_REPO": "https://gl.test/team/a.git",
        "BUILDKITE_PULL_REQUEST_LABELS": "",
    }
    assert (mr_env["BUILDKITE_BUILD_AUTHOR"], mr_env["BUILDKITE_BUILD_CREATOR_EMAIL"]) == (
        "Dan", "dan@example.test",
    )  # fmt: skip


def test_failure_breaks_dependents_and_fails_the_build(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, FAN))
    runner.run(exit_status=2)
    assert steps(build) == {"build": "failed", "test": "broken", "lint": "broken", "done": "broken"}
    assert fresh(build).state == BuildState.FAILED


SOFT = """
steps:
  - command: exit 3
    key: soft
    soft_fail: [{exit_status: 3}]
  - command: exit 4
    key: hard
    soft_fail: [{exit_status: 3}]
  - wait: ~
    continue_on_failure: true
  - command: echo after
    key: after
"""


def test_soft_fail_and_continue_on_failure(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, SOFT))
    other = Runner.of(world, runner.capture, name="other")
    jobs = {runner.take(), other.take()}
    by_label = {j.label: j for j in jobs if j is not None}
    runner.finish(by_label["exit 3"], 3)
    assert fresh(build).state == BuildState.RUNNING
    runner.finish(by_label["exit 4"], 4)
    assert steps(build)["soft"] == StepState.SOFT_FAILED
    assert steps(build)["hard"] == StepState.FAILED
    assert fresh(build).state == BuildState.FAILING
    runner.run()
    assert steps(build)["after"] == StepState.PASSED
    assert fresh(build).state == BuildState.FAILED


RETRY = """
steps:
  - command: flaky
    key: flaky
    retry:
      automatic:
        - exit_status: -1
          limit: 2
        - exit_status: 5
          limit: 1
"""


def test_automatic_retry_on_exit_status_and_lost_agent(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, RETRY))
    runner.run(exit_status=5)
    retried = job_of(build, "flaky")
    assert retried.attempt == 1 and retried.job is not None
    assert retried.job.payload["env"]["BUILDKITE_RETRY_COUNT"] == "1"
    # The agent is lost mid-job: the sweep marks the job lost (-1); the build sweep retries it.
    job = runner.take()
    assert job is not None
    Job.objects.filter(pk=job.pk).update(
        state=JobState.LOST, exit_status=-1, finished_at=job.started_at
    )
    scheduler.sweep()
    assert job_of(build, "flaky").attempt == 2
    runner.run(exit_status=5)  # exit 5 was allowed one retry only, and it was used
    assert steps(build)["flaky"] == StepState.FAILED and fresh(build).state == BuildState.FAILED
    assert BuildJob.objects.filter(build=build).count() == 3


def test_a_lost_job_without_retry_fails_its_step_saying_why(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, "steps:\n  - command: x\n"))
    job = runner.take()
    assert job is not None
    Job.objects.filter(pk=job.pk).update(
        state=JobState.LOST, exit_status=-1, signal_reason="agent_lost", finished_at=job.started_at
    )
    scheduler.sweep()
    row = BuildStep.objects.get(build=build)
    assert (row.state, fresh(build).state) == (StepState.FAILED, BuildState.FAILED)
    assert (
        row.skip_reason == f"job {job.pk} lost: its agent stopped answering (agent_lost, exit -1)"
    )


BLOCK = """
steps:
  - command: echo build
  - block: Release?
    key: release
    fields:
      - text: Reason
        key: reason
        format: "[a-z ]+"
      - select: Where
        key: where
        options:
          - {label: Staging, value: staging}
          - {label: Production, value: production}
  - command: echo deploy
    key: deploy
"""


def test_block_step_unblocked_with_input_stored_as_meta_data(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, BLOCK))
    runner.run()
    assert steps(build)["release"] == StepState.BLOCKED and fresh(build).state == BuildState.BLOCKED
    with pytest.raises(ValidationError) as bad:
        services.unblock_step(
            world.principal, build, "release", {"reason": "UPPER", "where": "moon"}
        )
    assert set(bad.value.message_dict) == {"reason", "where"}
    assert steps(build)["release"] == StepState.BLOCKED
    services.unblock_step(
        world.principal, build, "release", {"reason": "ship it", "where": "staging"}
    )
    assert fresh(build).meta_data == {"reason": "ship it", "where": "staging"}
    assert steps(build)["release"] == StepState.PASSED
    assert runner.run().label == "echo deploy"
    assert fresh(build).state == BuildState.PASSED
    event = AuditEvent.objects.get(action="build.unblock")
    assert event.changes == {"step": "release", "fields": ["reason", "where"]}


def test_cancel_build_cancels_jobs_and_waiting_steps(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, FAN))
    job = runner.take()
    assert job is not None
    build = services.cancel_build(world.principal, build)
    assert build.state == BuildState.CANCELING
    assert dispatch.job_status(job).cancel_requested
    runner.finish(job, 143, "cancel")
    assert fresh(build).state == BuildState.CANCELED
    assert set(steps(build).values()) == {StepState.CANCELED}
    with pytest.raises(ValidationError):
        services.cancel_build(world.principal, build)


def test_manual_retry_reopens_a_failed_build(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, FAN))
    runner.run(exit_status=1)
    assert fresh(build).state == BuildState.FAILED
    retried = services.retry_job(world.principal, job_of(build, "build"))
    assert retried.attempt == 1 and fresh(build).state == BuildState.RUNNING
    assert len(runner.run_all()) == 6  # the retried build job, 3 test shards, lint, done
    assert fresh(build).state == BuildState.PASSED


MATRIX = """
steps:
  - label: "test {{matrix.os}} {{matrix.py}}"
    command: "echo {{matrix.os}}-{{matrix.py}}"
    agents: {queue: default}
    matrix:
      setup:
        os: [linux, mac]
        py: ["3.11", "3.12"]
      adjustments:
        - with: {os: mac, py: "3.11"}
          skip: true
        - with: {os: mac, py: "3.12"}
          soft_fail: true
"""


def test_matrix_expands_with_adjustments(world: World, runner: Runner) -> None:
    build = services.create_build(world.principal, make_pipeline(world, MATRIX))
    labels = set()
    for _ in range(3):
        job = runner.take()  # one at a time: a runner (agent) holds one job
        assert job is not None
        labels.add(job.label)
        runner.finish(job, 1 if "mac" in job.label else 0)
    assert labels == {"test linux 3.11", "test linux 3.12", "test mac 3.12"}
    assert runner.take() is None
    assert fresh(build).state == BuildState.PASSED  # the mac failure is a soft one


def test_branch_filters_and_conditions_skip_steps(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - command: echo always
    key: always
  - command: echo main-only
    key: main-only
    branches: "main release/*"
  - command: echo if-tag
    key: if-tag
    if: build.branch =~ /^v[0-9]/ || build.env("FORCE") == "1"
"""
    pipeline = make_pipeline(world, yaml)
    build = services.create_build(world.principal, pipeline, branch="feature/a")
    assert steps(build) == {"always": "running", "main-only": "skipped", "if-tag": "skipped"}
    forced = services.create_build(
        world.principal, pipeline, branch="release/2", env={"FORCE": "1"}
    )
    assert steps(forced) == {"always": "running", "main-only": "running", "if-tag": "running"}


def test_concurrency_group_limits_jobs_across_builds(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - command: deploy
    concurrency: 1
    concurrency_group: deploy/prod
"""
    pipeline = make_pipeline(world, yaml)
    first = services.create_build(world.principal, pipeline)
    second = services.create_build(world.principal, pipeline)
    assert Job.objects.filter(origin__startswith="pipelines.job:").count() == 1
    job = runner.take()
    assert job is not None and job_of(first, "step-1").job_id == job.pk
    assert job_of(second, "step-1").job_id is None
    runner.finish(job)
    assert job_of(second, "step-1").job_id is not None
    runner.run()
    assert fresh(first).state == fresh(second).state == BuildState.PASSED


def test_build_numbers_count_per_pipeline(world: World) -> None:
    one = make_pipeline(world, FAN, slug="one")
    two = make_pipeline(world, FAN, slug="two")
    numbers = [services.create_build(world.principal, p).number for p in (one, one, two)]
    assert numbers == [1, 2, 1]


def test_trigger_step_mirrors_the_triggered_build(world: World, runner: Runner) -> None:
    make_pipeline(world, "steps:\n  - command: echo child\n", slug="child")
    parent = make_pipeline(
        world,
        "steps:\n  - trigger: child\n    key: t\n    build:\n      branch: dev\n      env: {X: '1'}\n",
        slug="parent",
    )
    build = services.create_build(world.principal, parent)
    assert steps(build)["t"] == StepState.RUNNING
    job = runner.run()
    assert job.payload["env"]["BUILDKITE_BRANCH"] == "dev" and job.payload["env"]["X"] == "1"
    assert fresh(build).state == BuildState.PASSED


def test_viewer_cannot_build_and_strangers_see_nothing(world: World) -> None:
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    from bastion.core.access import Principal
    from bastion.core.models import Role
    from bastion.pipelines.access import get_pipeline_for
    from tests.factories import make_member

    pipeline = make_pipeline(world, FAN)
    viewer = Principal.of_user(make_member(world.org, Role.VIEWER))
    with pytest.raises(PermissionDenied):
        services.create_build(viewer, pipeline)
    stranger = World("x")
    with pytest.raises(Http404):
        get_pipeline_for(stranger.principal, world.org, "app")


def test_a_finish_whose_hook_never_ran_is_picked_up_by_the_scheduler_tick(
    world: World, runner: Runner
) -> None:
    """As if the server died between committing a finish and advancing the build."""
    from bastion.core.scheduler import tick

    build = services.create_build(world.principal, make_pipeline(world, FAN))
    job = runner.take()
    assert job is not None
    dispatch.finish(job, 0)  # outside capture: the post-commit hook does not run
    assert steps(build)["build"] == StepState.RUNNING
    assert scheduler.active_build_ids() == [build.pk]
    tick()
    assert steps(build)["build"] == StepState.PASSED and steps(build)["test"] == StepState.RUNNING
    assert scheduler.active_build_ids() == []


def test_a_job_that_cannot_be_created_fails_its_step_not_the_scheduler(
    world: World, runner: Runner
) -> None:
    yaml = """
steps:
  - command: echo {{matrix}}
    key: fan
    agents: {queue: "{{matrix}}"}
    matrix: [default, "No Such Queue"]
  - command: echo after
    key: after
    allow_dependency_failure: true
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    row = steps(build)
    assert row["fan"] == StepState.FAILED and row["after"] == StepState.RUNNING
    assert "lowercase letters" in build.steps.get(key="fan").skip_reason  # the queue's error
    runner.run_all()
    assert fresh(build).state == BuildState.FAILED
    assert scheduler.active_build_ids() == []


GATED = """
steps:
  - block: Deploy?
    key: admins-only
    allowed_teams: [admins]
  - block: Any member
    key: members
    depends_on: ~
    allowed_teams: members
  - block: Named team
    key: team
    depends_on: ~
    allowed_teams: [deployers]
"""


def test_allowed_teams_say_which_roles_may_unblock(world: World, runner: Runner) -> None:
    from django.core.exceptions import PermissionDenied

    from bastion.core.access import Principal
    from bastion.core.models import Role
    from tests.factories import make_member

    pipeline = make_pipeline(world, GATED)
    # Bastion has no teams: a name that is no role is said at creation, and admins unblock.
    assert services.check_yaml(pipeline.yaml).warnings == (
        'steps[2] (key "team"): `allowed_teams` names organization roles (owners, admins, '
        "members); 'deployers' is none, so admins and owners unblock it",
    )
    build = services.create_build(world.principal, pipeline)
    member = Principal.of_user(make_member(world.org, Role.MEMBER))
    admin = Principal.of_user(make_member(world.org, Role.ADMIN))
    for key in ("admins-only", "team"):
        with pytest.raises(PermissionDenied):
            services.unblock_step(member, build, key)
        assert steps(build)[key] == StepState.BLOCKED
    services.unblock_step(member, build, "members")
    services.unblock_step(admin, build, "admins-only")
    services.unblock_step(world.principal, build, "team")  # the owner
    assert set(steps(build).values()) == {StepState.PASSED}
    assert fresh(build).state == BuildState.PASSED
    assert AuditEvent.objects.filter(action="build.unblock").count() == 3


WHO = """
steps:
  - {command: echo, key: ui, if: build.source == "ui"}
  - {command: echo, key: api, if: build.source == "api"}
  - {command: echo, key: trigger-job, if: build.source == "trigger_job"}
  - {command: echo, key: owner, if: build.creator.email == "boss@example.test"}
  - {command: echo, key: named, if: build.creator.name == "Ada Boss"}
  - {command: echo, key: nobody, if: build.creator.id == null}
  - {command: echo, key: no-author, if: build.author.email == null && build.author.name == null}
"""


def test_if_conditions_know_the_source_and_the_creator_of_a_build(world: World) -> None:
    from bastion.core.services import create_api_token
    from bastion.pipelines.environment import condition_context
    from bastion.pipelines.models import Build
    from tests.api.conftest import ApiClient
    from tests.web.conftest import login_client

    type(world.owner).objects.filter(pk=world.owner.pk).update(
        email="boss@example.test", first_name="Ada", last_name="Boss"
    )
    world.owner.refresh_from_db()
    make_pipeline(world, WHO)
    make_pipeline(world, "steps:\n  - trigger: app\n    key: t\n", slug="parent")
    base = f"/o/{world.org.slug}/pipelines/app/builds/"
    assert login_client(world.owner).post(base, {"branch": "main"}).status_code == 302
    token = create_api_token(world.principal, world.org, name="ci", role="member").plaintext
    reply = ApiClient(token).call(
        "POST", f"/organizations/{world.org.slug}/pipelines/app/builds", {}
    )
    assert reply.status == 201, reply.body
    services.create_build(world.principal, Pipeline.objects.get(slug="parent"))
    from_ui, from_api, triggered = Build.objects.filter(pipeline__slug="app").order_by("number")
    assert [b.source for b in (from_ui, from_api, triggered)] == ["ui", "api", "trigger_job"]
    ran = {b.source: {k for k, s in steps(b).items() if s != StepState.SKIPPED} for b in
           (from_ui, from_api, triggered)}  # fmt: skip
    # The token's creator and the triggering build's creator are the build's creator too.
    for source in ("ui", "api", "trigger_job"):
        assert ran[source] == {source.replace("_", "-"), "owner", "named", "no-author"}, ran
    context = condition_context(from_api)
    assert context["build.creator.id"] == str(world.owner.pk)
    assert context["build.author.username"] is None and context["build.pull_request.labels"] is None
    # A webhook or schedule build has no creator (only the commit's author, if told).
    Build.objects.filter(pk=from_api.pk).update(creator=None)
    assert condition_context(fresh(from_api))["build.creator.email"] is None
