"""Cron schedules: computing next runs, and the registry of what a due schedule fires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.db.models.signals import post_delete
from django.utils import timezone

from bastion.core.models import Organization, Schedule

ScheduleHandler = Callable[[Schedule, datetime], None]
_handlers: dict[str, ScheduleHandler] = {}


def register(kind: str) -> Callable[[ScheduleHandler], ScheduleHandler]:
    """Decorator: ``@schedules.register("scan")`` makes due 'scan' schedules call the function."""

    def decorate(handler: ScheduleHandler) -> ScheduleHandler:
        _handlers[kind] = handler
        return handler

    return decorate


def handler_for(kind: str) -> ScheduleHandler | None:
    return _handlers.get(kind)


def validate(cron: str, tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError({"timezone": [f"Unknown time zone {tz!r}."]}) from exc
    if not croniter.is_valid(cron):
        raise ValidationError({"cron": [f"Not a valid cron expression: {cron!r}."]})


def clean(cron: str, tz: str) -> tuple[str, str]:
    """A person's cron expression and time zone, normalized (spaces folded, UTC when empty) and
    validated as five fields; what every kind of schedule stores."""
    cron = " ".join(cron.split())
    if not cron or len(cron) > 100:
        raise ValidationError({"cron": ["A cron expression of at most 100 characters."]})
    if len(cron.split()) != 5:
        raise ValidationError({"cron": ["Use five fields: minute hour day month weekday."]})
    tz = tz.strip() or "UTC"
    validate(cron, tz)
    return cron, tz


def next_runs(cron: str, tz: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` run times after ``after``, evaluated in the schedule's time zone."""
    zone = ZoneInfo(tz)
    try:
        iterator = croniter(cron, after.astimezone(zone))
    except CroniterBadCronError as exc:
        raise ValidationError({"cron": [str(exc)]}) from exc
    return [iterator.get_next(datetime) for _ in range(count)]


def upcoming(schedule: Schedule, count: int = 3) -> list[datetime]:
    """A schedule's next ``count`` runs from now (none while it is paused), for pages and APIs."""
    if not schedule.enabled:
        return []
    return next_runs(schedule.cron, schedule.timezone, timezone.now(), count)


def first_run(cron: str, tz: str, enabled: bool = True) -> datetime | None:
    """When a new or edited schedule fires first (None while it is paused)."""
    if not enabled:
        return None
    return next_runs(cron, tz, timezone.now())[0]


def create(
    organization: Organization, kind: str, *, name: str, cron: str, tz: str, enabled: bool
) -> Schedule:
    """A new core schedule of ``kind``; the caller links its own row and sets ``object_id``
    (see ``link``). Call it inside the caller's action (its transaction, its audit row)."""
    return Schedule.objects.create(
        organization=organization,
        kind=kind,
        object_id="",
        name=name,
        cron=cron,
        timezone=tz,
        enabled=enabled,
        next_run_at=first_run(cron, tz, enabled),
    )


def link(schedule: Schedule, row: Model) -> None:
    """Point a core schedule at the app row that says what it fires."""
    schedule.object_id = str(row.pk)
    schedule.save(update_fields=["object_id"])


def reschedule(schedule: Schedule, *, cron: str, tz: str, enabled: bool, name: str) -> None:
    """Replace a schedule's timing; its next run is computed again from now. Call it inside the
    caller's action (its transaction, its audit row)."""
    schedule.cron, schedule.timezone, schedule.enabled = cron, tz, enabled
    schedule.name = name
    schedule.next_run_at = first_run(cron, tz, enabled)
    schedule.save(update_fields=["cron", "timezone", "enabled", "name", "next_run_at"])


def delete_with(model: type[Model], dispatch_uid: str) -> None:
    """Delete the core schedule of each deleted ``model`` row (a row with a ``schedule`` one-to-one
    field), so cascades from a target or a suite leave no schedule behind."""

    def drop(sender: type[Model], instance: Model, **_: object) -> None:
        Schedule.objects.filter(pk=instance.schedule_id).delete()  # type: ignore[attr-defined]

    post_delete.connect(drop, sender=model, dispatch_uid=dispatch_uid, weak=False)
