"""Test data for pipelines, built through the real actions, and a driver that plays an agent
through the dispatch functions (for scheduler tests that need no agent process)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from bastion.core.access import Principal
from bastion.core.models import Organization
from bastion.jobs import dispatch
from bastion.jobs.models import Agent, Cluster, Job
from bastion.pipelines import scheduler, services
from bastion.pipelines.models import Build, BuildJob, BuildStep, Pipeline
from tests.jobs.helpers import World


def make_pipeline(world: World, yaml: str, slug: str = "app", **kwargs: str) -> Pipeline:
    return services.create_pipeline(
        world.principal, world.org, slug=slug, yaml=yaml, cluster=world.cluster, **kwargs
    )


def steps(build: Build) -> dict[str, str]:
    return {row.key: row.state for row in BuildStep.objects.filter(build=build)}


def fresh(build: Build) -> Build:
    build.refresh_from_db()
    return build


@dataclass
class Runner:
    """Plays one agent: takes the next job, and finishes it with the exit status asked for."""

    agent: Agent
    # pytest-django's django_capture_on_commit_callbacks: runs the post-commit hooks (the build
    # advance after a finish) that a test transaction would otherwise never commit.
    capture: Callable[..., AbstractContextManager[Any]]

    @classmethod
    def of(cls, world: World, capture: Callable[..., Any], name: str = "runner") -> Runner:
        agent, _ = world.agent(name=name)
        return cls(agent, capture)

    @classmethod
    def of_cluster(cls, team: Any, capture: Callable[..., Any], cluster: str = "default") -> Runner:
        """An agent in one of a team's clusters (for API tests built on tests.api's Team)."""
        from bastion.jobs import services as job_services

        owner = Principal.of_user(team.owner)
        found = job_services.get_cluster_for(owner, team.org, cluster)
        token = job_services.create_agent_token(owner, found).plaintext
        agent = dispatch.register_agent(token, name="runner", tags={}).agent
        return cls(agent, capture)

    def finish(self, job: Job, exit_status: int = 0, signal_reason: str = "") -> Job:
        with self.capture(execute=True):
            return dispatch.finish(job, exit_status, signal_reason)

    def take(self) -> Job | None:
        job = dispatch.poll(self.agent)
        if job is None:
            return None
        dispatch.accept(self.agent, job.pk)
        return dispatch.start(job)

    def run(self, exit_status: int = 0, signal_reason: str = "") -> Job:
        job = self.take()
        assert job is not None, "no job to run"
        return self.finish(job, exit_status, signal_reason)

    def run_all(self, exit_status: int = 0, limit: int = 100) -> list[Job]:
        done = []
        for _ in range(limit):
            job = self.take()
            if job is None:
                return done
            done.append(self.finish(job, exit_status))
        raise AssertionError("more jobs than the limit")


def job_of(build: Build, key: str, index: int = 0) -> BuildJob:
    return (
        BuildJob.objects.filter(build=build, step__key=key, index=index, superseded=False)
        .select_related("job", "step")
        .get()
    )


WORLD_YAML = """
agents:
  queue: pipelines
steps:
  - command: exit 1
    key: fails
  - block: Go?
    key: gate
    depends_on: ~
"""


def pipeline_world(
    owner: Principal, org: Organization, cluster: Cluster, agent_token: str
) -> tuple[str, int, int]:
    """For the API matrices: a pipeline whose build has a failed job and a blocked step, so
    unblock, retry, cancel and delete all have something to act on (in that order)."""
    pipeline = services.create_pipeline(
        owner, org, slug=f"{org.slug}-app", yaml=WORLD_YAML, cluster=cluster
    )
    build = services.create_build(owner, pipeline)
    agent = dispatch.register_agent(
        agent_token, name="pipeline-agent", tags={"queue": "pipelines"}
    ).agent
    job = dispatch.poll(agent)
    assert job is not None
    dispatch.accept(agent, job.pk)
    dispatch.start(job)
    dispatch.finish(job, 1)
    scheduler.advance_build(build.pk)  # what the post-commit hook does after a real finish
    build_job = BuildJob.objects.get(job=Job.objects.get(pk=job.pk))
    pipeline_schedule_world(owner, pipeline)
    return pipeline.slug, build.number, build_job.pk


def pipeline_schedule_world(owner: Principal, pipeline: Pipeline) -> int:
    """A paused nightly schedule of ``pipeline`` for the page and API matrices."""
    from bastion.pipelines import scheduling

    spec = scheduling.BuildScheduleSpec(cron="0 2 * * *", enabled=False)
    return scheduling.create_build_schedule(owner, pipeline, spec).pk


def pipeline_schedule_of(org: Organization, pipeline: str) -> int:
    """The schedule ``pipeline_schedule_world`` made for an organization's pipeline."""
    from bastion.pipelines.models import PipelineSchedule

    row = PipelineSchedule.objects.filter(
        pipeline__organization=org, pipeline__slug=pipeline
    ).first()
    return row.pk if row is not None else 0
