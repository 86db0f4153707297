"""Step keys that act at run time (issue 6, part 1), each through a build on the real database,
with agents played through the dispatch calls: cancel_on_build_failing, priority, agent tags,
depends_on allow_failure, branch negation, select fields with ``multiple``, and trigger steps
with ``async`` and ``build.meta_data``."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from bastion.jobs import dispatch
from bastion.pipelines import services
from bastion.pipelines.models import Build, BuildState, StepState
from tests.jobs.helpers import World
from tests.pipelines.helpers import Runner, fresh, job_of, make_pipeline, steps


def test_cancel_on_build_failing_cancels_only_the_steps_that_ask(
    world: World, runner: Runner
) -> None:
    yaml = """
steps:
  - {key: fails, command: exit 1}
  - {key: long, command: sleep 600, cancel_on_build_failing: true}
  - {key: keeps, command: sleep 5}
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    others = [Runner.of(world, runner.capture, name) for name in ("b", "c")]
    jobs = {job.label: job for job in (r.take() for r in (runner, *others)) if job is not None}
    assert set(jobs) == {"exit 1", "sleep 600", "sleep 5"}
    runner.finish(jobs["exit 1"], 1)
    assert fresh(build).state == BuildState.FAILING
    assert dispatch.job_status(jobs["sleep 600"]).cancel_requested
    assert not dispatch.job_status(jobs["sleep 5"]).cancel_requested
    runner.finish(jobs["sleep 600"], 143, "cancel")
    runner.finish(jobs["sleep 5"], 0)
    assert steps(build) == {"fails": "failed", "long": "canceled", "keeps": "passed"}
    assert fresh(build).state == BuildState.FAILED


def test_priority_decides_which_ready_job_an_agent_gets_first(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - {key: low, command: echo low, priority: -5}
  - {key: plain, command: echo plain}
  - {key: high, command: echo high, priority: 10}
"""
    services.create_build(world.principal, make_pipeline(world, yaml))
    assert [runner.run().label for _ in range(3)] == ["echo high", "echo plain", "echo low"]


def test_agent_tags_target_only_matching_agents(world: World, runner: Runner) -> None:
    yaml = "steps:\n  - command: uname\n    agents: {queue: default, os: linux}\n"
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    mac, _ = world.agent({"queue": "default", "os": "mac"}, name="mac")
    assert dispatch.poll(mac) is None
    linux = Runner(
        world.agent({"queue": "default", "os": "linux"}, name="linux")[0], runner.capture
    )
    assert linux.run().label == "uname"
    assert fresh(build).state == BuildState.PASSED


def test_depends_on_allow_failure_lets_one_dependent_run(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - {key: tests, command: exit 1}
  - key: report
    command: echo report
    depends_on: [{step: tests, allow_failure: true}]
  - {key: deploy, command: echo deploy, depends_on: tests}
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    runner.run(exit_status=1)
    assert steps(build) == {"tests": "failed", "report": "running", "deploy": "broken"}
    assert runner.run().label == "echo report"
    assert steps(build)["report"] == StepState.PASSED and fresh(build).state == BuildState.FAILED


def test_branch_patterns_with_negation(world: World) -> None:
    yaml = """
steps:
  - {key: not-wip, command: echo a, branches: "!wip/*"}
  - {key: release-but-not-rc, command: echo b, branches: "release/* !release/*-rc"}
"""
    pipeline = make_pipeline(world, yaml)
    built = {
        branch: steps(services.create_build(world.principal, pipeline, branch=branch))
        for branch in ("main", "wip/x", "release/2", "release/2-rc")
    }
    assert built == {
        "main": {"not-wip": "running", "release-but-not-rc": "skipped"},
        "wip/x": {"not-wip": "skipped", "release-but-not-rc": "skipped"},
        "release/2": {"not-wip": "running", "release-but-not-rc": "running"},
        "release/2-rc": {"not-wip": "running", "release-but-not-rc": "skipped"},
    }
    skipped = Build.objects.get(branch="wip/x").steps.get(key="not-wip")
    assert skipped.skip_reason == "branches"


def test_select_fields_take_several_values_only_with_multiple(world: World) -> None:
    yaml = """
steps:
  - block: Where?
    key: where
    fields:
      - select: Regions
        key: regions
        multiple: true
        options: [{label: EU, value: eu}, {label: US, value: us}, {label: Asia, value: asia}]
      - select: Size
        key: size
        required: false
        default: small
        options: [{label: Small, value: small}, {label: Large, value: large}]
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    with pytest.raises(ValidationError) as one:
        services.unblock_step(world.principal, build, "where", {"regions": "eu", "size": ["small", "large"]})  # fmt: skip
    assert one.value.message_dict == {"size": ["Choose one value."]}
    with pytest.raises(ValidationError) as bad:
        services.unblock_step(world.principal, build, "where", {"regions": ["eu", "mars"]})
    assert set(bad.value.message_dict) == {"regions"}
    with pytest.raises(ValidationError) as missing:
        services.unblock_step(world.principal, build, "where", {})
    assert missing.value.message_dict == {"regions": ["This field is required."]}
    services.unblock_step(world.principal, build, "where", {"regions": ["eu", "us"]})
    # Buildkite stores a multiple select's values one a line; an unset field takes its default.
    assert fresh(build).meta_data == {"regions": "eu\nus", "size": "small"}
    assert fresh(build).state == BuildState.PASSED


def test_trigger_async_passes_at_once_and_gives_the_child_its_meta_data(
    world: World, runner: Runner
) -> None:
    make_pipeline(world, "steps:\n  - command: echo child\n", slug="child")
    parent_yaml = """
steps:
  - trigger: child
    key: t
    async: true
    build:
      message: "deploy {{x}}"
      meta_data: {release: v7, region: eu}
  - {key: after, command: echo after}
"""
    build = services.create_build(
        world.principal, make_pipeline(world, parent_yaml, slug="parent"), message="parent"
    )
    row = build.steps.get(key="t")
    child = row.triggered_build
    assert child is not None and row.state == StepState.PASSED  # async: does not wait
    assert (child.meta_data, child.message, child.source) == (
        {"release": "v7", "region": "eu"}, "deploy {{x}}", "trigger_job",
    )  # fmt: skip
    assert child.triggered_from_id == row.pk
    # The child fails; an async trigger step does not care, the parent passes.
    for _ in range(2):
        job = runner.take()
        assert job is not None
        runner.finish(job, 1 if job.label == "echo child" else 0)
    assert (fresh(child).state, fresh(build).state) == (BuildState.FAILED, BuildState.PASSED)


def test_values_of_variables_named_like_secrets_are_masked_by_the_server(
    world: World, runner: Runner
) -> None:
    yaml = """
env:
  API_TOKEN: tok-1234567890
steps:
  - command: deploy
    key: ship-it
    env: {DEPLOY_KEY: key-abcdefgh, DB_PASSWORD: pw-secret-99, REGION: eu-west-1}
"""
    services.create_build(world.principal, make_pipeline(world, yaml))
    job = runner.take()
    assert job is not None
    # Declared to the agent too (it masks what the job prints); Bastion's own variables such
    # as BUILDKITE_STEP_KEY are names, not secrets.
    assert job.payload["secret_env"] == ["API_TOKEN", "DB_PASSWORD", "DEPLOY_KEY"]
    printed = "key-abcdefgh pw-secret-99 tok-1234567890 eu-west-1 ship-it\n"
    assert dispatch.append_log(job, 0, printed).stored
    assert dispatch.read_log(job) == [(0, "[REDACTED] [REDACTED] [REDACTED] eu-west-1 ship-it\n")]
    runner.finish(job)


def test_automatic_retry_by_signal_and_by_signal_reason(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - key: oom
    command: ./memory-hungry
    retry:
      automatic: [{signal: SIGKILL, limit: 1}]
  - key: stopped
    command: ./long
    retry:
      automatic: [{signal_reason: agent_stop, limit: 1}]
  - key: plain
    command: exit 137
    retry:
      automatic: [{signal: SIGTERM, limit: 1}]
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    agents = [runner, Runner.of(world, runner.capture, "b"), Runner.of(world, runner.capture, "c")]
    jobs = {job.label: job for job in (a.take() for a in agents) if job is not None}
    runner.finish(jobs["./memory-hungry"], 137)  # killed by SIGKILL: 128 + 9
    runner.finish(jobs["./long"], 143, "agent_stop")  # the agent was stopped mid-job
    runner.finish(jobs["exit 137"], 137)  # SIGKILL, but the rule asks for SIGTERM
    assert (job_of(build, "oom").attempt, job_of(build, "stopped").attempt) == (1, 1)
    assert steps(build)["plain"] == StepState.FAILED
    for _ in range(2):
        runner.run()
    assert steps(build) == {"oom": "passed", "stopped": "passed", "plain": "failed"}


def test_input_steps_do_not_hold_back_the_steps_after_them(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - input: Release notes
    key: notes
    fields: [{text: Notes, key: notes}]
  - {key: build, command: make}
  - key: publish
    command: publish
    depends_on: [build, notes]
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    # An input step is no barrier: build runs while it waits; publish names it and waits.
    assert steps(build) == {"notes": "blocked", "build": "running", "publish": "waiting"}
    runner.run()
    assert steps(build)["publish"] == StepState.WAITING
    services.unblock_step(world.principal, build, "notes", {"notes": "fixes"})
    assert runner.run().label == "publish"
    assert fresh(build).state == BuildState.PASSED and fresh(build).meta_data == {"notes": "fixes"}


def test_timeout_in_minutes_and_artifact_paths_reach_the_job(world: World, runner: Runner) -> None:
    yaml = """
steps:
  - command: make dist
    timeout_in_minutes: 2
    artifact_paths: "dist/*.tar.gz;reports/**/*.xml"
"""
    services.create_build(world.principal, make_pipeline(world, yaml))
    job = runner.take()
    assert job is not None and job.timeout_s == 120
    assert job.payload["env"]["BUILDKITE_TIMEOUT"] == "2"
    assert job.payload["artifact_paths"] == ["dist/*.tar.gz", "reports/**/*.xml"]
