"""``{% suite_schedules suite %}``: a suite's schedules (cron, time zone, environment, next runs)
with the forms to add, edit and delete them, for the suite page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import template

from bastion.browser import scheduling
from bastion.browser.models import Suite, SuiteSchedule
from bastion.web.views._common import principal_of

register = template.Library()
COMMON_ZONES = ("UTC", "Europe/Lisbon", "Europe/London", "Europe/Berlin", "America/New_York")


@dataclass(frozen=True)
class ScheduleRow:
    row: SuiteSchedule
    next_runs: list[datetime]


@register.inclusion_tag("browser/schedules/_suite_schedules.html", takes_context=True)
def suite_schedules(context: dict[str, Any], suite: Suite) -> dict[str, Any]:
    request = context["request"]
    rows = scheduling.schedules_of(principal_of(request), suite)
    shown = [
        ScheduleRow(
            row, [t.astimezone(ZoneInfo(row.schedule.timezone)) for t in scheduling.next_runs(row)]
        )
        for row in rows
    ]
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "current_org": context.get("current_org"),
        "is_member": context.get("is_member"),
        "suite": suite,
        "project": suite.project,
        "schedules": shown,
        "environments": list(suite.project.browser_environments.order_by("slug")),
        "zones": COMMON_ZONES + tuple(sorted(available_timezones() - set(COMMON_ZONES))),
        "errors": context.get("schedule_errors"),
    }
