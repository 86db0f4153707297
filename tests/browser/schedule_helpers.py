"""A suite schedule for the route matrices, made through the real action."""

from __future__ import annotations

from bastion.browser import scheduling, services
from bastion.core.access import Principal
from bastion.core.models import Project


def schedule_world(owner: Principal, project: Project, suite: str) -> int:
    found = services.get_suite_for(owner, project, suite)
    spec = scheduling.SuiteScheduleSpec(cron="0 6 * * 1-5", timezone="Europe/Lisbon")
    return scheduling.create_suite_schedule(owner, found, spec).pk
