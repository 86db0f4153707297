"""Forms of the pipeline page's Schedules section: add, edit (or pause) and delete a pipeline's
scheduled builds; each redirects back to the pipeline page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path

from bastion.core.models import Organization, Role
from bastion.pipelines import access, scheduling
from bastion.pipelines.models import Pipeline, PipelineSchedule
from bastion.web.views._common import org_action, principal_of

MAX_ENV_TEXT = 20_000


def _pipeline(request: HttpRequest, organization: Organization, slug: str) -> Pipeline:
    return access.get_pipeline_for(principal_of(request), organization, slug, Role.MEMBER)


def _row(
    request: HttpRequest, organization: Organization, slug: str, row_id: int
) -> PipelineSchedule:
    found = _pipeline(request, organization, slug)
    return scheduling.get_build_schedule_for(principal_of(request), found, row_id, Role.MEMBER)


def parse_env(text: str) -> dict[str, str]:
    """``NAME=value`` lines (blank lines and ``#`` comments ignored)."""
    if len(text) > MAX_ENV_TEXT:
        raise ValidationError({"env": [f"At most {MAX_ENV_TEXT} characters of variables."]})
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValidationError({"env": [f"Line {number}: write NAME=value."]})
        env[name.strip()] = value.strip()
    return env


def _spec(request: HttpRequest) -> scheduling.BuildScheduleSpec:
    post = request.POST
    return scheduling.BuildScheduleSpec(
        cron=post.get("cron", ""),
        timezone=post.get("timezone", ""),
        branch=post.get("branch", ""),
        commit=post.get("commit", ""),
        message=post.get("message", ""),
        env=parse_env(post.get("env", "")),
        label=post.get("label", ""),
        enabled=post.get("enabled") == "1",
    )


def _back(organization: Organization, pipeline: Pipeline) -> HttpResponse:
    return redirect("web:pipeline", org=organization.slug, pipeline=pipeline.slug)


@org_action(Role.MEMBER)
def schedule_create(
    request: HttpRequest, organization: Organization, pipeline: str
) -> HttpResponse:
    found = _pipeline(request, organization, pipeline)
    try:
        scheduling.create_build_schedule(principal_of(request), found, _spec(request))
        messages.success(request, "Schedule added.")
    except ValidationError as exc:
        messages.error(request, "Schedule not saved: " + " ".join(exc.messages))
    return _back(organization, found)


@org_action(Role.MEMBER)
def schedule_edit(
    request: HttpRequest, organization: Organization, pipeline: str, pipeline_schedule_id: int
) -> HttpResponse:
    row = _row(request, organization, pipeline, pipeline_schedule_id)
    try:
        scheduling.update_build_schedule(principal_of(request), row, _spec(request))
        messages.success(request, "Schedule saved.")
    except ValidationError as exc:
        messages.error(request, "Schedule not saved: " + " ".join(exc.messages))
    return _back(organization, row.pipeline)


@org_action(Role.MEMBER)
def schedule_delete(
    request: HttpRequest, organization: Organization, pipeline: str, pipeline_schedule_id: int
) -> HttpResponse:
    row = _row(request, organization, pipeline, pipeline_schedule_id)
    scheduling.delete_build_schedule(principal_of(request), row)
    messages.success(request, "Schedule deleted.")
    return _back(organization, row.pipeline)


SCHEDULES = "pipelines/<slug:pipeline>/schedules/"
patterns = [
    path(SCHEDULES + "new/", schedule_create, name="pipeline-schedule-create"),
    path(SCHEDULES + "<int:pipeline_schedule_id>/", schedule_edit, name="pipeline-schedule-edit"),
    path(
        SCHEDULES + "<int:pipeline_schedule_id>/delete/",
        schedule_delete,
        name="pipeline-schedule-delete",
    ),
]
