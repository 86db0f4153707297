"""Scheduled suite runs: cron + time zone per suite and environment (staging every hour,
production at 06:00 Europe/Lisbon), kept in core ``Schedule`` rows of kind ``browser.suite``.

The scheduler (``bastion.core.scheduler``) fires a due schedule once, however many runs a
downtime swallowed, and calls ``fire_suite_schedule``, which starts the run as the scheduler (a
system principal confined to the suite's organization) with the suite's concurrency. Create,
edit and delete are named actions, each in one transaction with its audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404

from bastion.browser import runs
from bastion.browser.models import Environment, Suite, SuiteSchedule
from bastion.core import audit, schedules
from bastion.core.access import Principal, require_role
from bastion.core.models import Role, Schedule

log = logging.getLogger(__name__)
KIND = "browser.suite"
MAX_PER_SUITE = 20
NEXT_RUNS_SHOWN = 3


@dataclass(frozen=True)
class SuiteScheduleSpec:
    """What a person asks for; validated before anything is written."""

    cron: str
    timezone: str = "UTC"
    environment: Environment | None = None
    enabled: bool = True


def schedules_of(principal: Principal, suite: Suite) -> QuerySet[SuiteSchedule]:
    require_role(principal, suite.project.organization, Role.VIEWER)
    return (
        SuiteSchedule.objects.filter(
            suite=suite, suite__project__organization__in=principal.organizations()
        )
        .select_related("schedule", "environment")
        .order_by("pk")
    )


def get_suite_schedule_for(
    principal: Principal, suite: Suite, schedule_id: int, minimum: str = Role.VIEWER
) -> SuiteSchedule:
    row = schedules_of(principal, suite).filter(pk=schedule_id).first()
    if row is None:
        raise Http404("No such schedule.")
    require_role(principal, suite.project.organization, minimum)
    return row


def next_runs(row: SuiteSchedule, count: int = NEXT_RUNS_SHOWN) -> list[datetime]:
    """The next runs, in the schedule's own time zone (what the page and the API show)."""
    return schedules.upcoming(row.schedule, count)


def _validate(suite: Suite, spec: SuiteScheduleSpec) -> SuiteScheduleSpec:
    cron, tz = schedules.clean(spec.cron, spec.timezone)
    if spec.environment is not None and spec.environment.project_id != suite.project_id:
        raise ValidationError({"environment": ["Choose an environment of the suite's project."]})
    return SuiteScheduleSpec(cron, tz, spec.environment, spec.enabled)


def _describe(row: SuiteSchedule) -> dict[str, object]:
    return {
        "suite": row.suite.slug,
        "environment": row.environment.slug if row.environment else "",
        "cron": row.schedule.cron,
        "timezone": row.schedule.timezone,
        "enabled": row.schedule.enabled,
    }


def _name(suite: Suite, environment: Environment | None) -> str:
    return f"suite {suite.name}" + (f" on {environment.name}" if environment else "")


def create_suite_schedule(
    principal: Principal, suite: Suite, spec: SuiteScheduleSpec
) -> SuiteSchedule:
    organization = suite.project.organization
    require_role(principal, organization, Role.MEMBER)
    spec = _validate(suite, spec)
    if SuiteSchedule.objects.filter(suite=suite).count() >= MAX_PER_SUITE:
        raise ValidationError({"cron": [f"At most {MAX_PER_SUITE} schedules per suite."]})
    with transaction.atomic():
        core = schedules.create(
            organization,
            KIND,
            name=_name(suite, spec.environment),
            cron=spec.cron,
            tz=spec.timezone,
            enabled=spec.enabled,
        )
        row = SuiteSchedule.objects.create(suite=suite, environment=spec.environment, schedule=core)
        schedules.link(core, row)
        audit.record(
            principal.actor,
            "browser.schedule.create",
            organization=organization,
            target=row,
            changes=_describe(row),
        )
    return row


def update_suite_schedule(
    principal: Principal, row: SuiteSchedule, spec: SuiteScheduleSpec
) -> SuiteSchedule:
    """Replace a schedule's settings; its next run is computed again from now."""
    organization = row.suite.project.organization
    require_role(principal, organization, Role.MEMBER)
    spec = _validate(row.suite, spec)
    before = _describe(row)
    with transaction.atomic():
        schedules.reschedule(
            row.schedule,
            cron=spec.cron,
            tz=spec.timezone,
            enabled=spec.enabled,
            name=_name(row.suite, spec.environment),
        )
        row.environment = spec.environment
        row.save(update_fields=["environment"])
        audit.record(
            principal.actor,
            "browser.schedule.update",
            organization=organization,
            target=row,
            changes={"before": before, "after": _describe(row)},
        )
    return row


def delete_suite_schedule(principal: Principal, row: SuiteSchedule) -> None:
    organization = row.suite.project.organization
    require_role(principal, organization, Role.MEMBER)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "browser.schedule.delete",
            organization=organization,
            target=row,
            changes=_describe(row),
        )
        row.schedule.delete()  # cascades to the suite schedule


def connect() -> None:
    # A suite's or environment's deletion cascades to its schedules; their core rows go too.
    schedules.delete_with(SuiteSchedule, dispatch_uid="browser-suite-schedule")


@schedules.register(KIND)
def fire_suite_schedule(schedule: Schedule, due_at: datetime) -> None:
    """Start the scheduled suite run; a suite that cannot run (no tests left, no cluster) is
    skipped and logged, and the schedule fires again at its next time."""
    row = (
        SuiteSchedule.objects.select_related("suite__project__organization", "environment")
        .filter(schedule=schedule)
        .first()
    )
    if row is None:
        log.warning("browser schedule %s has no suite; skipped", schedule.pk)
        return
    principal = Principal.system("scheduler", row.suite.project.organization)
    try:
        run = runs.start_run(
            principal,
            row.suite.project,
            runs.RunRequest(suite=row.suite, environment=row.environment),
        )
    except ValidationError as exc:
        log.warning("scheduled run of suite %s skipped: %s", row.suite_id, exc.messages)
        return
    log.info("schedule %s (due %s) started browser run %s", schedule.pk, due_at.isoformat(), run.pk)
