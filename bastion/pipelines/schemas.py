"""Typed contracts of the pipelines API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from bastion.pipelines.models import (
    Annotation,
    Build,
    BuildJob,
    BuildStep,
    Pipeline,
    StepVerification,
)

STARTER_YAML = "steps:\n  - label: hello\n    command: echo hello\n"


class PipelineIn(Schema):
    slug: str = Field(..., max_length=50)
    yaml: str = Field(
        STARTER_YAML,
        max_length=1024 * 1024,
        description="The pipeline file (Buildkite's pipeline.yml); a one-step starter if omitted.",
    )
    cluster: str = Field("default", max_length=50)
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=5000)
    repository: str = Field("", max_length=500)
    default_branch: str = Field("main", min_length=1, max_length=200)


class PipelinePatch(Schema):
    yaml: str | None = Field(None, max_length=1024 * 1024)
    cluster: str | None = Field(None, max_length=50)
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    repository: str | None = Field(None, max_length=500)
    default_branch: str | None = Field(None, min_length=1, max_length=200)


class BuildSummaryOut(Schema):
    id: int
    number: int
    branch: str
    commit: str
    message: str
    state: str
    source: str
    schedule_id: int | None = Field(
        None, description="The pipeline schedule that started the build (source: schedule)."
    )
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, build: Build) -> BuildSummaryOut:
        return cls(
            id=build.pk,
            number=build.number,
            branch=build.branch,
            commit=build.commit,
            message=build.message,
            state=build.state,
            source=build.source,
            schedule_id=build.schedule_id,
            created_by=build.created_by,
            created_at=build.created_at,
            started_at=build.started_at,
            finished_at=build.finished_at,
        )


class PipelineOut(Schema):
    id: int
    organization: str
    slug: str
    name: str
    description: str
    cluster: str
    repository: str
    default_branch: str
    yaml: str
    created_at: datetime
    updated_at: datetime
    last_build: BuildSummaryOut | None
    warnings: list[str] = Field(
        default_factory=list,
        description="On create and update: what in the file is accepted but not acted on yet.",
    )

    @classmethod
    def of(cls, pipeline: Pipeline, last: Build | None = None) -> PipelineOut:
        return cls(
            id=pipeline.pk,
            organization=pipeline.organization.slug,
            slug=pipeline.slug,
            name=pipeline.name,
            description=pipeline.description,
            cluster=pipeline.cluster.name,
            repository=pipeline.repository,
            default_branch=pipeline.default_branch,
            yaml=pipeline.yaml,
            created_at=pipeline.created_at,
            updated_at=pipeline.updated_at,
            last_build=BuildSummaryOut.of(last) if last is not None else None,
        )


class BuildIn(Schema):
    branch: str | None = Field(None, min_length=1, max_length=200)
    commit: str = Field("HEAD", min_length=1, max_length=100)
    message: str = Field("", max_length=5000)
    env: dict[str, str] = Field(default_factory=dict)
    meta_data: dict[str, str] = Field(default_factory=dict)


class BuildJobOut(Schema):
    id: int
    index: int
    matrix: dict[str, str] | None
    attempt: int
    superseded: bool
    retried_by: str
    job_id: int | None
    label: str
    state: str
    exit_status: int | None
    agent: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, build_job: BuildJob) -> BuildJobOut:
        job = build_job.job
        return cls(
            id=build_job.pk,
            index=build_job.index,
            matrix=build_job.matrix if isinstance(build_job.matrix, dict) else None,
            attempt=build_job.attempt,
            superseded=build_job.superseded,
            retried_by=build_job.retried_by,
            job_id=job.pk if job is not None else None,
            label=job.label if job is not None else "",
            state=job.state if job is not None else "limited",
            exit_status=job.exit_status if job is not None else None,
            agent=job.agent.name if job is not None and job.agent is not None else None,
            started_at=job.started_at if job is not None else None,
            finished_at=job.finished_at if job is not None else None,
        )


class StepOut(Schema):
    key: str
    type: str
    label: str
    state: str
    group: str | None
    needs: list[dict[str, Any]]
    skip_reason: str
    unblocked_by: str
    started_at: datetime | None
    finished_at: datetime | None
    triggered_build: int | None
    jobs: list[BuildJobOut]
    # A scan:, browser: or release: step: what it started (ids), its figures and verdict.
    verification: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: BuildStep, jobs: list[BuildJob]) -> StepOut:
        return cls(
            key=row.key,
            type=row.type,
            label=row.label,
            state=row.state,
            group=row.group_key or None,
            needs=list(row.needs),
            skip_reason=row.skip_reason,
            unblocked_by=row.unblocked_by,
            started_at=row.started_at,
            finished_at=row.finished_at,
            triggered_build=row.triggered_build_id,
            jobs=[BuildJobOut.of(j) for j in jobs],
        )


class AnnotationOut(Schema):
    context: str
    style: str
    body: str
    updated_at: datetime


class BuildOut(BuildSummaryOut):
    organization: str
    pipeline: str
    env: dict[str, str]
    meta_data: dict[str, str]
    steps: list[StepOut]
    annotations: list[AnnotationOut] = Field(default_factory=list)

    @classmethod
    def detail(cls, build: Build) -> BuildOut:
        jobs: dict[int, list[BuildJob]] = {}
        for build_job in (
            BuildJob.objects.filter(build=build).select_related("job__agent").order_by("pk")
        ):
            jobs.setdefault(build_job.step_id, []).append(build_job)
        steps = [
            StepOut.of(row, jobs.get(row.pk, []))
            for row in BuildStep.objects.filter(build=build).order_by("position")
        ]
        for out, found in zip(steps, verification_of(build, steps), strict=True):
            out.verification = found
        summary = BuildSummaryOut.of(build).model_dump()
        return cls(
            **summary,
            organization=build.pipeline.organization.slug,
            pipeline=build.pipeline.slug,
            env={str(k): str(v) for k, v in (build.env or {}).items()},
            meta_data={str(k): str(v) for k, v in (build.meta_data or {}).items()},
            steps=steps,
            annotations=[
                AnnotationOut(
                    context=a.context, style=a.style, body=a.body, updated_at=a.updated_at
                )
                for a in Annotation.objects.filter(build=build)
            ],
        )


class UnblockIn(Schema):
    fields: dict[str, str | list[str]] = Field(default_factory=dict)


def verification_of(build: Build, steps: list[StepOut]) -> list[dict[str, Any] | None]:
    """For each step, what its scan:/browser:/release: part started, or None (one query)."""
    found = {
        v.step.key: {
            "kind": v.kind,
            "scan": v.scan_id,
            "browser_run": v.browser_run_id,
            "deploy": v.deploy_id,
            "summary": v.summary,
            "outcome": v.outcome,
        }
        for v in StepVerification.objects.filter(step__build=build).select_related("step")
    }
    return [found.get(step.key) for step in steps]
