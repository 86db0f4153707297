"""Scheduled scans: cron + time zone per target and profile (e.g. lightning at 08:00 and 17:30
on weekdays), kept in core ``Schedule`` rows of kind ``scan``.

The scheduler (``bastion.core.scheduler``) fires a due schedule once, however many runs a
downtime swallowed, and calls ``fire_scan_schedule``, which starts the scan as the scheduler
(a system principal confined to the target's organization). Create, edit and delete are named
actions, each in one transaction with its audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from bastion.core import audit, schedules
from bastion.core.access import Principal, get_scoped_or_404, require_role
from bastion.core.models import Organization, Role, Schedule
from bastion.jobs.models import Cluster
from bastion.scanning import services
from bastion.scanning.engine.profiles import discover_profiles
from bastion.scanning.models import ScanSchedule, Target

log = logging.getLogger(__name__)
KIND = "scan"
MAX_PER_TARGET = 20
NEXT_RUNS_SHOWN = 3


@dataclass(frozen=True)
class ScheduleSpec:
    """What a person asks for; every field is validated before anything is written."""

    cron: str
    timezone: str = "UTC"
    profile: str = "lightning"
    queue: str = "default"
    name: str = ""
    enabled: bool = True


def schedules_for(principal: Principal, target: Target | None = None) -> QuerySet[ScanSchedule]:
    rows = ScanSchedule.objects.filter(target__project__organization__in=principal.organizations())
    if target is not None:
        rows = rows.filter(target=target)
    return rows.select_related("schedule", "cluster", "target__project__organization").order_by(
        "pk"
    )


def get_schedule_for(
    principal: Principal,
    schedule_id: int,
    minimum: str = Role.VIEWER,
    organization: Organization | None = None,
) -> ScanSchedule:
    """One scan schedule of the caller's organizations, else 404; 403 below ``minimum``."""
    return get_scoped_or_404(
        principal,
        schedules_for(principal),
        schedule_id,
        org_path="target__project__organization",
        what="schedule",
        minimum=minimum,
        organization=organization,
    )


def next_runs(row: ScanSchedule, count: int = NEXT_RUNS_SHOWN) -> list[datetime]:
    """The next runs in the schedule's own time zone (what the page and the API show)."""
    return schedules.upcoming(row.schedule, count)


def _validate(spec: ScheduleSpec, target: Target, cluster: Cluster) -> ScheduleSpec:
    cron, tz = schedules.clean(spec.cron, spec.timezone)
    if spec.profile not in discover_profiles():
        raise ValidationError({"profile": [f"Unknown profile {spec.profile!r}."]})
    if cluster.organization_id != target.project.organization_id:
        raise ValidationError({"cluster": ["Choose a cluster of this organization."]})
    queue = spec.queue.strip() or "default"
    if len(queue) > 100 or len(spec.name) > 200:
        raise ValidationError({"queue": ["A queue name of at most 100 characters."]})
    return ScheduleSpec(cron, tz, spec.profile, queue, spec.name.strip(), spec.enabled)


def _describe(row: ScanSchedule) -> dict[str, object]:
    return {
        "target": row.target.name,
        "cron": row.schedule.cron,
        "timezone": row.schedule.timezone,
        "profile": row.profile,
        "cluster": row.cluster.name,
        "queue": row.queue,
        "enabled": row.schedule.enabled,
    }


def create_schedule(
    principal: Principal, target: Target, cluster: Cluster, spec: ScheduleSpec
) -> ScanSchedule:
    organization = target.project.organization
    require_role(principal, organization, Role.ADMIN)
    spec = _validate(spec, target, cluster)
    if ScanSchedule.objects.filter(target=target).count() >= MAX_PER_TARGET:
        raise ValidationError({"cron": [f"At most {MAX_PER_TARGET} schedules per target."]})
    with transaction.atomic():
        core = schedules.create(
            organization,
            KIND,
            name=spec.name or f"{spec.profile} scan of {target.name}",
            cron=spec.cron,
            tz=spec.timezone,
            enabled=spec.enabled,
        )
        row = ScanSchedule.objects.create(
            target=target, schedule=core, profile=spec.profile, cluster=cluster, queue=spec.queue
        )
        schedules.link(core, row)
        audit.record(
            principal.actor,
            "scan_schedule.create",
            organization=organization,
            target=row,
            changes=_describe(row),
        )
    return row


def update_schedule(
    principal: Principal, row: ScanSchedule, cluster: Cluster, spec: ScheduleSpec
) -> ScanSchedule:
    """Replace a schedule's settings; its next run is computed again from now."""
    organization = row.target.project.organization
    require_role(principal, organization, Role.ADMIN)
    spec = _validate(spec, row.target, cluster)
    before = _describe(row)
    with transaction.atomic():
        name = spec.name or row.schedule.name
        schedules.reschedule(
            row.schedule, cron=spec.cron, tz=spec.timezone, enabled=spec.enabled, name=name
        )
        row.profile, row.cluster, row.queue = spec.profile, cluster, spec.queue
        row.save(update_fields=["profile", "cluster", "queue"])
        audit.record(
            principal.actor,
            "scan_schedule.update",
            organization=organization,
            target=row,
            changes={"before": before, "after": _describe(row)},
        )
    return row


def delete_schedule(principal: Principal, row: ScanSchedule) -> None:
    organization = row.target.project.organization
    require_role(principal, organization, Role.ADMIN)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "scan_schedule.delete",
            organization=organization,
            target=row,
            changes=_describe(row),
        )
        row.schedule.delete()  # cascades to the scan schedule


def connect() -> None:
    # A target's deletion cascades to its scan schedules; their core rows go with them.
    schedules.delete_with(ScanSchedule, dispatch_uid="scan-schedule")


@schedules.register(KIND)
def fire_scan_schedule(schedule: Schedule, due_at: datetime) -> None:
    """Start the scheduled scan. A target that lost its verification is skipped (and logged):
    the schedule stays, and fires again once the target is verified."""
    row = (
        ScanSchedule.objects.select_related("target__project__organization", "cluster")
        .filter(schedule=schedule)
        .first()
    )
    if row is None:
        log.warning("scan schedule %s has no scan settings; skipped", schedule.pk)
        return
    principal = Principal.system("scheduler", row.target.project.organization)
    try:
        scan = services.start_scan(
            principal, row.target, row.cluster, profile=row.profile, queue=row.queue
        )
    except ValidationError as exc:
        log.warning("scheduled scan of target %s skipped: %s", row.target_id, exc.messages)
        return
    log.info("schedule %s (due %s) started scan %s", schedule.pk, due_at.isoformat(), scan.pk)
