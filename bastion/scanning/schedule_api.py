"""Scan schedules over /api/v1/: list and create on a target, replace and delete one schedule.
Handlers parse, fetch through the scoped helpers and delegate to ``scheduling``."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.jobs.services import get_cluster_for
from bastion.scanning import access, scheduling
from bastion.scanning.models import ScanSchedule

router = Router(tags=["scanning"])
BASE = "/organizations/{org}"


class ScanScheduleIn(Schema):
    cron: str = Field(..., max_length=100, examples=["0 8 * * 1-5"])
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Lisbon"])
    profile: str = Field("lightning", max_length=50)
    cluster: str = Field(..., max_length=100)
    queue: str = Field("default", max_length=100)
    name: str = Field("", max_length=200)
    enabled: bool = True

    def spec(self) -> scheduling.ScheduleSpec:
        return scheduling.ScheduleSpec(
            cron=self.cron,
            timezone=self.timezone,
            profile=self.profile,
            queue=self.queue,
            name=self.name,
            enabled=self.enabled,
        )


class ScanScheduleOut(Schema):
    id: int
    target_id: int
    name: str
    cron: str
    timezone: str
    profile: str
    cluster: str
    queue: str
    enabled: bool
    next_runs: list[datetime]
    last_run_at: datetime | None

    @classmethod
    def of(cls, row: ScanSchedule) -> ScanScheduleOut:
        return cls(
            id=row.pk,
            target_id=row.target_id,
            name=row.schedule.name,
            cron=row.schedule.cron,
            timezone=row.schedule.timezone,
            profile=row.profile,
            cluster=row.cluster.name,
            queue=row.queue,
            enabled=row.schedule.enabled,
            next_runs=scheduling.next_runs(row),
            last_run_at=row.schedule.last_run_at,
        )


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


def _schedule(request: HttpRequest, org: str, schedule_id: int, minimum: str) -> ScanSchedule:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    return scheduling.get_schedule_for(principal, schedule_id, minimum, organization)


@router.get(BASE + "/scan-targets/{target_id}/schedules", response=list[ScanScheduleOut])
def list_schedules(request: HttpRequest, org: str, target_id: int) -> list[ScanScheduleOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    target = access.get_target_for(principal, target_id, Role.VIEWER, organization)
    return [ScanScheduleOut.of(row) for row in scheduling.schedules_for(principal, target)]


@router.post(BASE + "/scan-targets/{target_id}/schedules", response={201: ScanScheduleOut})
def create_schedule(
    request: HttpRequest, org: str, target_id: int, body: ScanScheduleIn
) -> Status[ScanScheduleOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    target = access.get_target_for(principal, target_id, Role.ADMIN, organization)
    cluster = get_cluster_for(principal, organization, body.cluster, Role.ADMIN)
    row = scheduling.create_schedule(principal, target, cluster, body.spec())
    return Status(201, ScanScheduleOut.of(row))


@router.get(BASE + "/scan-schedules/{schedule_id}", response=ScanScheduleOut)
def get_schedule(request: HttpRequest, org: str, schedule_id: int) -> ScanScheduleOut:
    return ScanScheduleOut.of(_schedule(request, org, schedule_id, Role.VIEWER))


@router.put(BASE + "/scan-schedules/{schedule_id}", response=ScanScheduleOut)
def replace_schedule(
    request: HttpRequest, org: str, schedule_id: int, body: ScanScheduleIn
) -> ScanScheduleOut:
    row = _schedule(request, org, schedule_id, Role.ADMIN)
    organization = row.target.project.organization
    cluster = get_cluster_for(_principal(request), organization, body.cluster, Role.ADMIN)
    return ScanScheduleOut.of(
        scheduling.update_schedule(_principal(request), row, cluster, body.spec())
    )


@router.delete(BASE + "/scan-schedules/{schedule_id}", response={204: None})
def delete_schedule(request: HttpRequest, org: str, schedule_id: int) -> Status[None]:
    row = _schedule(request, org, schedule_id, Role.ADMIN)
    scheduling.delete_schedule(_principal(request), row)
    return Status(204, None)
