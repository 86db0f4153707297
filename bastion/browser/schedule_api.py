"""Scheduled suite runs over /api/v1/: list, create, replace and delete a suite's schedules,
each with its next runs. Mounted inside the browser router; writes go through ``scheduling``."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.browser import scheduling, services
from bastion.browser.models import Suite, SuiteSchedule
from bastion.core.access import Principal, get_project_for
from bastion.core.models import Role

router = Router(tags=["browser"])
BASE = "/organizations/{org}/projects/{project}/browser/suites/{suite}/schedules"


class BrowserScheduleIn(Schema):
    cron: str = Field(..., max_length=100, description="Five fields: minute hour day month weekday")
    timezone: str = Field("UTC", max_length=64, description="An IANA time zone, e.g. Europe/Lisbon")
    environment: str = Field("", max_length=60, description="Environment slug; empty: none")
    enabled: bool = True


class BrowserScheduleOut(Schema):
    id: int
    suite: str
    environment: str
    cron: str
    timezone: str
    enabled: bool
    next_runs: list[datetime]
    last_run_at: datetime | None

    @classmethod
    def of(cls, row: SuiteSchedule) -> BrowserScheduleOut:
        return cls(
            id=row.pk,
            suite=row.suite.slug,
            environment=row.environment.slug if row.environment else "",
            cron=row.schedule.cron,
            timezone=row.schedule.timezone,
            enabled=row.schedule.enabled,
            next_runs=scheduling.next_runs(row),
            last_run_at=row.schedule.last_run_at,
        )


def _suite(
    request: HttpRequest, org: str, project: str, suite: str, minimum: str = Role.VIEWER
) -> tuple[Principal, Suite]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    found = get_project_for(principal, org, project, minimum)
    return principal, services.get_suite_for(principal, found, suite, minimum)


def _spec(
    principal: Principal, suite: Suite, body: BrowserScheduleIn
) -> scheduling.SuiteScheduleSpec:
    environment = (
        services.get_environment_for(principal, suite.project, body.environment)
        if body.environment
        else None
    )
    return scheduling.SuiteScheduleSpec(
        cron=body.cron, timezone=body.timezone, environment=environment, enabled=body.enabled
    )


@router.get(BASE, response=list[BrowserScheduleOut])
def list_schedules(
    request: HttpRequest, org: str, project: str, suite: str
) -> list[BrowserScheduleOut]:
    principal, found = _suite(request, org, project, suite)
    return [BrowserScheduleOut.of(row) for row in scheduling.schedules_of(principal, found)]


@router.post(BASE, response={201: BrowserScheduleOut})
def create_schedule(
    request: HttpRequest, org: str, project: str, suite: str, body: BrowserScheduleIn
) -> Status[BrowserScheduleOut]:
    principal, found = _suite(request, org, project, suite, Role.MEMBER)
    row = scheduling.create_suite_schedule(principal, found, _spec(principal, found, body))
    return Status(201, BrowserScheduleOut.of(row))


@router.put(BASE + "/{suite_schedule_id}", response=BrowserScheduleOut)
def replace_schedule(
    request: HttpRequest,
    org: str,
    project: str,
    suite: str,
    suite_schedule_id: int,
    body: BrowserScheduleIn,
) -> BrowserScheduleOut:
    principal, found = _suite(request, org, project, suite, Role.MEMBER)
    row = scheduling.get_suite_schedule_for(principal, found, suite_schedule_id, Role.MEMBER)
    spec = _spec(principal, found, body)
    return BrowserScheduleOut.of(scheduling.update_suite_schedule(principal, row, spec))


@router.delete(BASE + "/{suite_schedule_id}", response={204: None})
def delete_schedule(
    request: HttpRequest, org: str, project: str, suite: str, suite_schedule_id: int
) -> Status[None]:
    principal, found = _suite(request, org, project, suite, Role.MEMBER)
    row = scheduling.get_suite_schedule_for(principal, found, suite_schedule_id, Role.MEMBER)
    scheduling.delete_suite_schedule(principal, row)
    return Status(204, None)
