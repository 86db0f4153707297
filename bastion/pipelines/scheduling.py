"""Scheduled builds: cron + time zone per pipeline (nightly on main at 02:00 Europe/Lisbon), kept
in core ``Schedule`` rows of kind ``pipelines.build``.

The scheduler (``bastion.core.scheduler``) fires a due schedule once, however many runs a
downtime swallowed, and calls ``fire_build_schedule``, which creates the build as the scheduler
(a system principal confined to the pipeline's organization) with source ``schedule`` and a link
to the schedule (Buildkite's "Scheduled build"). Create, edit and delete are named actions, each
in one transaction with its audit row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from bastion.core import audit, schedules
from bastion.core.access import Principal, get_scoped_or_404, require_role
from bastion.core.models import Role, Schedule
from bastion.pipelines import services
from bastion.pipelines.models import Pipeline, PipelineSchedule

log = logging.getLogger(__name__)
KIND = "pipelines.build"
MAX_PER_PIPELINE = 20
NEXT_RUNS_SHOWN = 3


@dataclass(frozen=True)
class BuildScheduleSpec:
    """What a person asks for; validated before anything is written."""

    cron: str
    timezone: str = "UTC"
    branch: str = ""  # empty: the pipeline's default branch
    commit: str = "HEAD"
    message: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    label: str = ""
    enabled: bool = True


def schedules_of(principal: Principal, pipeline: Pipeline) -> QuerySet[PipelineSchedule]:
    require_role(principal, pipeline.organization, Role.VIEWER)
    return (
        PipelineSchedule.objects.filter(
            pipeline=pipeline, pipeline__organization__in=principal.organizations()
        )
        .select_related("schedule", "pipeline__organization")
        .order_by("pk")
    )


def get_build_schedule_for(
    principal: Principal, pipeline: Pipeline, schedule_id: int, minimum: str = Role.VIEWER
) -> PipelineSchedule:
    """One schedule of ``pipeline`` (404 outside the caller's scope, 403 below ``minimum``)."""
    return get_scoped_or_404(
        principal,
        schedules_of(principal, pipeline),
        schedule_id,
        org_path="pipeline__organization",
        what="schedule",
        minimum=minimum,
    )


def next_runs(row: PipelineSchedule, count: int = NEXT_RUNS_SHOWN) -> list[datetime]:
    """The next runs (none while paused), what the page and the API show."""
    return schedules.upcoming(row.schedule, count)


def _validate(pipeline: Pipeline, spec: BuildScheduleSpec) -> BuildScheduleSpec:
    cron, tz = schedules.clean(spec.cron, spec.timezone)
    errors: dict[str, list[str]] = {}
    branch = spec.branch.strip() or pipeline.default_branch
    if len(branch) > 200:
        errors["branch"] = ["The branch must have 1 to 200 characters."]
    commit = spec.commit.strip() or "HEAD"
    if len(commit) > 100:
        errors["commit"] = ["The commit must have 1 to 100 characters."]
    if len(spec.message) > 500:
        errors["message"] = ["The message must have at most 500 characters."]
    if len(spec.label) > 200:
        errors["label"] = ["The label must have at most 200 characters."]
    if errors:
        raise ValidationError(errors)
    env = services.check_env(spec.env)
    return BuildScheduleSpec(
        cron, tz, branch, commit, spec.message.strip(), env, spec.label.strip(), spec.enabled
    )


def _describe(row: PipelineSchedule) -> dict[str, object]:
    return {
        "pipeline": row.pipeline.slug,
        "label": row.label,
        "cron": row.schedule.cron,
        "timezone": row.schedule.timezone,
        "branch": row.branch,
        "commit": row.commit,
        "env": sorted(row.env),  # names only: values may be secrets
        "enabled": row.schedule.enabled,
    }


def _name(pipeline: Pipeline, spec: BuildScheduleSpec) -> str:
    return (spec.label or f"build of {pipeline.slug} on {spec.branch}")[:200]


def create_build_schedule(
    principal: Principal, pipeline: Pipeline, spec: BuildScheduleSpec
) -> PipelineSchedule:
    organization = pipeline.organization
    require_role(principal, organization, Role.MEMBER)
    spec = _validate(pipeline, spec)
    if PipelineSchedule.objects.filter(pipeline=pipeline).count() >= MAX_PER_PIPELINE:
        raise ValidationError({"cron": [f"At most {MAX_PER_PIPELINE} schedules per pipeline."]})
    with transaction.atomic():
        core = schedules.create(
            organization,
            KIND,
            name=_name(pipeline, spec),
            cron=spec.cron,
            tz=spec.timezone,
            enabled=spec.enabled,
        )
        row = PipelineSchedule.objects.create(
            pipeline=pipeline,
            schedule=core,
            label=spec.label,
            branch=spec.branch,
            commit=spec.commit,
            message=spec.message,
            env=dict(spec.env),
            created_by=principal.actor.label[:200],
        )
        schedules.link(core, row)
        audit.record(
            principal.actor,
            "pipeline.schedule.create",
            organization=organization,
            target=row,
            changes=_describe(row),
        )
    return row


def update_build_schedule(
    principal: Principal, row: PipelineSchedule, spec: BuildScheduleSpec
) -> PipelineSchedule:
    """Replace a schedule's settings; its next run is computed again from now."""
    organization = row.pipeline.organization
    require_role(principal, organization, Role.MEMBER)
    spec = _validate(row.pipeline, spec)
    before = _describe(row)
    with transaction.atomic():
        schedules.reschedule(
            row.schedule,
            cron=spec.cron,
            tz=spec.timezone,
            enabled=spec.enabled,
            name=_name(row.pipeline, spec),
        )
        row.label, row.branch, row.commit = spec.label, spec.branch, spec.commit
        row.message, row.env = spec.message, dict(spec.env)
        row.save(update_fields=["label", "branch", "commit", "message", "env"])
        audit.record(
            principal.actor,
            "pipeline.schedule.update",
            organization=organization,
            target=row,
            changes=audit.diff(before, _describe(row)),
        )
    return row


def delete_build_schedule(principal: Principal, row: PipelineSchedule) -> None:
    organization = row.pipeline.organization
    require_role(principal, organization, Role.MEMBER)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "pipeline.schedule.delete",
            organization=organization,
            target=row,
            changes=_describe(row),
        )
        row.schedule.delete()  # cascades to the pipeline schedule; its builds keep SET_NULL


def connect() -> None:
    # A pipeline's deletion cascades to its schedules; their core rows go too.
    schedules.delete_with(PipelineSchedule, dispatch_uid="pipeline-build-schedule")


@schedules.register(KIND)
def fire_build_schedule(schedule: Schedule, due_at: datetime) -> None:
    """Create the scheduled build (audited as ``build.create`` by the scheduler, with the
    schedule's id). A build the pipeline refuses (its file no longer parses) is logged and
    skipped; the schedule fires again at its next time."""
    row = (
        PipelineSchedule.objects.select_related("pipeline__organization", "pipeline__cluster")
        .filter(schedule=schedule)
        .first()
    )
    if row is None:
        log.warning("pipeline schedule %s has no pipeline; skipped", schedule.pk)
        return
    principal = Principal.system(f"schedule:{schedule.pk}", row.pipeline.organization)
    try:
        build = services.create_build(
            principal,
            row.pipeline,
            branch=row.branch,
            commit=row.commit,
            message=row.message or f"Scheduled build: {schedule.name}",
            env=row.env,
            source="schedule",
            schedule=row,
        )
    except ValidationError as exc:
        log.warning("scheduled build of pipeline %s skipped: %s", row.pipeline_id, exc.messages)
        return
    log.info("schedule %s (due %s) created build %s", schedule.pk, due_at.isoformat(), build.pk)
