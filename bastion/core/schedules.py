"""Cron schedules: computing next runs, and the registry of what a due schedule fires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter
from django.core.exceptions import ValidationError

from bastion.core.models import Schedule

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


def next_runs(cron: str, tz: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` run times after ``after``, evaluated in the schedule's time zone."""
    zone = ZoneInfo(tz)
    try:
        iterator = croniter(cron, after.astimezone(zone))
    except CroniterBadCronError as exc:
        raise ValidationError({"cron": [str(exc)]}) from exc
    return [iterator.get_next(datetime) for _ in range(count)]
