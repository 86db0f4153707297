"""Forms of the suite page's Schedules section: add, edit and delete a suite's schedules
(the section itself is ``{% suite_schedules suite %}``); each redirects back to the suite page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path

from bastion.browser import scheduling, services
from bastion.browser.models import Suite, SuiteSchedule
from bastion.core.access import get_project_for
from bastion.core.models import Organization, Role
from bastion.web.views._common import org_action, principal_of


def _suite(request: HttpRequest, organization: Organization, project: str, suite: str) -> Suite:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    return services.get_suite_for(principal, found, suite, Role.MEMBER)


def _row(
    request: HttpRequest, organization: Organization, project: str, suite: str, row_id: int
) -> tuple[Suite, SuiteSchedule]:
    found = _suite(request, organization, project, suite)
    row = scheduling.get_suite_schedule_for(principal_of(request), found, row_id, Role.MEMBER)
    return found, row


def _spec(request: HttpRequest, suite: Suite) -> scheduling.SuiteScheduleSpec:
    env = request.POST.get("environment", "").strip()
    return scheduling.SuiteScheduleSpec(
        cron=request.POST.get("cron", ""),
        timezone=request.POST.get("timezone", ""),
        environment=(
            services.get_environment_for(principal_of(request), suite.project, env) if env else None
        ),
        enabled=request.POST.get("enabled") == "1",
    )


def _back(suite: Suite) -> HttpResponse:
    return redirect(
        "web:browser-suite",
        org=suite.project.organization.slug,
        project=suite.project.slug,
        suite=suite.slug,
    )


def _refused(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, "Schedule not saved: " + " ".join(exc.messages))


@org_action(Role.MEMBER)
def schedule_create(
    request: HttpRequest, organization: Organization, project: str, suite: str
) -> HttpResponse:
    found = _suite(request, organization, project, suite)
    try:
        scheduling.create_suite_schedule(principal_of(request), found, _spec(request, found))
        messages.success(request, "Schedule added.")
    except ValidationError as exc:
        _refused(request, exc)
    return _back(found)


@org_action(Role.MEMBER)
def schedule_edit(
    request: HttpRequest,
    organization: Organization,
    project: str,
    suite: str,
    suite_schedule_id: int,
) -> HttpResponse:
    found, row = _row(request, organization, project, suite, suite_schedule_id)
    try:
        scheduling.update_suite_schedule(principal_of(request), row, _spec(request, found))
        messages.success(request, "Schedule saved.")
    except ValidationError as exc:
        _refused(request, exc)
    return _back(found)


@org_action(Role.MEMBER)
def schedule_delete(
    request: HttpRequest,
    organization: Organization,
    project: str,
    suite: str,
    suite_schedule_id: int,
) -> HttpResponse:
    found, row = _row(request, organization, project, suite, suite_schedule_id)
    scheduling.delete_suite_schedule(principal_of(request), row)
    messages.success(request, "Schedule deleted.")
    return _back(found)


SCHEDULES = "browser/<slug:project>/suites/<slug:suite>/schedules/"
patterns = [
    path(SCHEDULES + "new/", schedule_create, name="browser-schedule-create"),
    path(SCHEDULES + "<int:suite_schedule_id>/", schedule_edit, name="browser-schedule-edit"),
    path(
        SCHEDULES + "<int:suite_schedule_id>/delete/",
        schedule_delete,
        name="browser-schedule-delete",
    ),
]
