"""Scheduled builds over /api/v1/: list, create, replace and delete a pipeline's schedules,
each with its next runs. Mounted inside the pipelines router; writes go through ``scheduling``."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.pipelines import access, scheduling
from bastion.pipelines.models import Pipeline, PipelineSchedule

router = Router(tags=["pipelines"])
BASE = "/organizations/{org}/pipelines/{pipeline}/schedules"


class BuildScheduleIn(Schema):
    cron: str = Field(..., max_length=100, description="Five fields: minute hour day month weekday")
    timezone: str = Field("UTC", max_length=64, description="An IANA time zone, e.g. Europe/Lisbon")
    branch: str = Field("", max_length=200, description="Empty: the pipeline's default branch")
    commit: str = Field("HEAD", max_length=100)
    message: str = Field("", max_length=500)
    env: dict[str, str] = Field(default_factory=dict)
    label: str = Field("", max_length=200)
    enabled: bool = True

    def spec(self) -> scheduling.BuildScheduleSpec:
        return scheduling.BuildScheduleSpec(
            cron=self.cron,
            timezone=self.timezone,
            branch=self.branch,
            commit=self.commit,
            message=self.message,
            env=self.env,
            label=self.label,
            enabled=self.enabled,
        )


class BuildScheduleOut(Schema):
    id: int
    pipeline: str
    label: str
    cron: str
    timezone: str
    branch: str
    commit: str
    message: str
    env: list[str] = Field(description="The names of the variables each build gets.")
    enabled: bool
    next_runs: list[datetime]
    last_run_at: datetime | None

    @classmethod
    def of(cls, row: PipelineSchedule) -> BuildScheduleOut:
        return cls(
            id=row.pk,
            pipeline=row.pipeline.slug,
            label=row.label,
            cron=row.schedule.cron,
            timezone=row.schedule.timezone,
            branch=row.branch,
            commit=row.commit,
            message=row.message,
            env=sorted(row.env),
            enabled=row.schedule.enabled,
            next_runs=scheduling.next_runs(row),
            last_run_at=row.schedule.last_run_at,
        )


def _pipeline(
    request: HttpRequest, org: str, pipeline: str, minimum: str = Role.VIEWER
) -> tuple[Principal, Pipeline]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    organization = get_organization_for(principal, org)
    return principal, access.get_pipeline_for(principal, organization, pipeline, minimum)


@router.get(BASE, response=list[BuildScheduleOut])
def list_schedules(request: HttpRequest, org: str, pipeline: str) -> list[BuildScheduleOut]:
    principal, found = _pipeline(request, org, pipeline)
    return [BuildScheduleOut.of(row) for row in scheduling.schedules_of(principal, found)]


@router.post(BASE, response={201: BuildScheduleOut})
def create_schedule(
    request: HttpRequest, org: str, pipeline: str, body: BuildScheduleIn
) -> Status[BuildScheduleOut]:
    principal, found = _pipeline(request, org, pipeline, Role.MEMBER)
    row = scheduling.create_build_schedule(principal, found, body.spec())
    return Status(201, BuildScheduleOut.of(row))


@router.put(BASE + "/{pipeline_schedule_id}", response=BuildScheduleOut)
def replace_schedule(
    request: HttpRequest, org: str, pipeline: str, pipeline_schedule_id: int, body: BuildScheduleIn
) -> BuildScheduleOut:
    principal, found = _pipeline(request, org, pipeline, Role.MEMBER)
    row = scheduling.get_build_schedule_for(principal, found, pipeline_schedule_id, Role.MEMBER)
    return BuildScheduleOut.of(scheduling.update_build_schedule(principal, row, body.spec()))


@router.delete(BASE + "/{pipeline_schedule_id}", response={204: None})
def delete_schedule(
    request: HttpRequest, org: str, pipeline: str, pipeline_schedule_id: int
) -> Status[None]:
    principal, found = _pipeline(request, org, pipeline, Role.MEMBER)
    row = scheduling.get_build_schedule_for(principal, found, pipeline_schedule_id, Role.MEMBER)
    scheduling.delete_build_schedule(principal, row)
    return Status(204, None)
