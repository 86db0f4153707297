"""Pipelines pages under ``/o/<org>/pipelines/``: the list with last builds, a pipeline's builds,
and a build with its step graph, live logs and the cancel / retry / unblock actions."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect

from bastion.core.access import Principal, projects_for
from bastion.core.models import Organization, Role
from bastion.jobs.models import Artifact, Job, JobState
from bastion.jobs.services import agents_for
from bastion.pipelines import access, scheduler, scheduling, services, verification_pages
from bastion.pipelines.models import Build, BuildJob, BuildStep, Pipeline, StepState
from bastion.pipelines.yaml import BlockStep, CommandStep, SelectField
from bastion.pipelines.yaml.steps import Field
from bastion.web.views._common import org_action, org_page, page, principal_of

LAST_BUILDS = 5
BUILDS_PAGE = 50
POLL_S = 2
MAX_ARTIFACTS = 1000
COMMON_ZONES = ("UTC", "Europe/Lisbon", "Europe/London", "Europe/Berlin", "America/New_York")


@dataclass
class StepView:
    row: BuildStep
    jobs: list[BuildJob] = field(default_factory=list)
    level: int = 0
    # For a blocked step: its input fields as ("text" | "select", field).
    fields: list[tuple[str, Field]] = field(default_factory=list)
    # For a blocked step: whether the viewer may unblock it, and who may (``allowed_teams``).
    may_unblock: bool = False
    unblock_role: str = ""
    # For a scan:, browser: or release: step: what it started and how that went.
    verification: verification_pages.Card | None = None
    # What the step's jobs uploaded (``artifact_paths``, ``bastion artifact upload``).
    artifacts: list[Artifact] = field(default_factory=list)
    # Build jobs a member may retry now (``retry.manual`` of the step; finished, not superseded).
    retryable: set[int] = field(default_factory=set)
    # Why the step's jobs cannot be retried (``retry.manual: {allowed: false, reason: ...}``).
    no_retry_reason: str = ""


@org_page()
def pipelines(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    rows = []
    for pipeline in access.pipelines_for(principal, organization)[:200]:
        builds = list(access.builds_for(principal, pipeline)[:LAST_BUILDS])
        rows.append((pipeline, builds))
    context = {
        "rows": rows,
        "has_projects": projects_for(principal, organization).exists(),
        "has_agents": agents_for(principal, organization).exists(),
    }
    return page(request, "pipelines/index.html", context, section="pipelines")


def _pipeline(request: HttpRequest, organization: Organization, slug: str) -> Pipeline:
    return access.get_pipeline_for(principal_of(request), organization, slug)


@org_page()
def pipeline_detail(
    request: HttpRequest, organization: Organization, pipeline: str
) -> HttpResponse:
    found = _pipeline(request, organization, pipeline)
    principal = principal_of(request)
    builds = list(access.builds_for(principal, found)[:BUILDS_PAGE])
    schedule_rows = [
        (row, scheduling.next_runs(row)) for row in scheduling.schedules_of(principal, found)
    ]
    return page(
        request,
        "pipelines/pipeline.html",
        {"pipeline": found, "builds": builds, "schedules": schedule_rows, "zones": COMMON_ZONES},
        section="pipelines",
    )


def _env_lines(text: str) -> dict[str, str]:
    """The new-build form's environment: ``KEY=VALUE`` a line; blank lines are skipped."""
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError({"env": [f"Environment line {number}: write KEY=VALUE."]})
        env[key.strip()] = value
    return env


@org_action(Role.MEMBER)
def build_create(request: HttpRequest, organization: Organization, pipeline: str) -> HttpResponse:
    found = _pipeline(request, organization, pipeline)
    try:
        build = services.create_build(
            principal_of(request),
            found,
            branch=request.POST.get("branch", "").strip() or None,
            commit=request.POST.get("commit", "").strip() or "HEAD",
            message=request.POST.get("message", "").strip()[:5000],
            env=_env_lines(request.POST.get("env", "")),
            source="ui",
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("web:pipeline", org=organization.slug, pipeline=found.slug)
    return redirect("web:build", org=organization.slug, pipeline=found.slug, number=build.number)


def _build(request: HttpRequest, organization: Organization, pipeline: str, number: int) -> Build:
    found = _pipeline(request, organization, pipeline)
    return access.get_build_for(principal_of(request), found, number)


def _graph(build: Build, principal: Principal) -> list[list[StepView]]:
    """Steps by dependency level: level 0 needs nothing, level n needs something of n - 1."""
    rows = BuildStep.objects.filter(build=build).select_related("triggered_build__pipeline")
    views = {row.key: StepView(row) for row in rows}
    jobs = BuildJob.objects.filter(build=build).select_related("job__agent").order_by("pk")
    by_step = {v.row.pk: v for v in views.values()}
    for build_job in jobs:
        by_step[build_job.step_id].jobs.append(build_job)
    step_of_job = {b.job_id: b.step_id for v in views.values() for b in v.jobs if b.job_id}
    for artifact in _artifacts(build).filter(job_id__in=list(step_of_job))[:MAX_ARTIFACTS]:
        by_step[step_of_job[artifact.job_id]].artifacts.append(artifact)
    for _ in range(len(views) + 1):  # relax until stable; bounded by the number of steps
        changed = False
        for view in views.values():
            needed = [views[n["key"]].level + 1 for n in view.row.needs if n["key"] in views]
            level = max(needed, default=0)
            if level != view.level:
                view.level, changed = level, True
        if not changed:
            break
    definition = scheduler.definition(build)
    cards = verification_pages.cards_for(build)
    for view in views.values():
        view.verification = cards.get(view.row.pk)
        step = definition.step(view.row.key)
        if view.row.state == StepState.BLOCKED and isinstance(step, BlockStep):
            view.fields = [
                ("select" if isinstance(f, SelectField) else "text", f) for f in step.fields
            ]
            view.may_unblock = services.may_unblock(principal, build, step)
            view.unblock_role = services.unblock_role(step) or ""
        if isinstance(step, CommandStep) and build.cancel_requested_at is None:
            _retry_options(view, step)
    levels: dict[int, list[StepView]] = {}
    for view in sorted(views.values(), key=lambda v: v.row.position):
        levels.setdefault(view.level, []).append(view)
    return [levels[level] for level in sorted(levels)]


def _artifacts(build: Build) -> QuerySet[Artifact]:
    """The artifacts of the build's jobs (every attempt), by path."""
    return Artifact.objects.filter(job__build_job__build=build).order_by("path", "pk")


def _retry_options(view: StepView, step: CommandStep) -> None:
    """Which of the step's jobs the Retry button is offered for, as ``services.retry_job``
    decides: finished and not retried yet, failed (or passed, with ``permit_on_passed``)."""
    manual = step.retry_manual
    if not manual.allowed:
        view.no_retry_reason = manual.reason or "retry.manual is off for this step"
        return
    for build_job in view.jobs:
        job = build_job.job
        if job is None or build_job.superseded or not job.is_finished:
            continue
        if job.state != JobState.PASSED or manual.permit_on_passed:
            view.retryable.add(build_job.pk)


def _selected_job(request: HttpRequest, build: Build) -> Job | None:
    raw = request.GET.get("job", "")
    if not raw.isdigit():
        return None
    found = BuildJob.objects.filter(build=build, job_id=int(raw)).select_related("job").first()
    return found.job if found is not None else None


def _build_context(request: HttpRequest, build: Build) -> dict[str, object]:
    job = _selected_job(request, build)
    context: dict[str, object] = {
        "build": build,
        "pipeline": build.pipeline,
        "levels": _graph(build, principal_of(request)),
        "poll_s": POLL_S,
        "selected": job,
    }
    return context


@org_page()
def build_detail(
    request: HttpRequest, organization: Organization, pipeline: str, number: int
) -> HttpResponse:
    build = _build(request, organization, pipeline, number)
    return page(
        request, "pipelines/build.html", _build_context(request, build), section="pipelines"
    )


@org_page()
def build_live(
    request: HttpRequest, organization: Organization, pipeline: str, number: int
) -> HttpResponse:
    build = _build(request, organization, pipeline, number)
    return page(
        request, "pipelines/_build_live.html", _build_context(request, build), section="pipelines"
    )


@org_page()
def build_artifacts(
    request: HttpRequest, organization: Organization, pipeline: str, number: int
) -> HttpResponseBase:
    """The build's artifacts; ``?id=N`` downloads one (as an attachment, never rendered)."""
    build = _build(request, organization, pipeline, number)
    raw = request.GET.get("id")
    if raw is None:
        rows = _artifacts(build).select_related("job__build_job__step")[:MAX_ARTIFACTS]
        context = {"build": build, "pipeline": build.pipeline, "artifacts": list(rows)}
        return page(request, "pipelines/artifacts.html", context, section="pipelines")
    found = _artifacts(build).filter(pk=int(raw)).first() if raw.isdigit() else None
    if found is None:
        raise Http404("No such artifact in this build.")
    response = FileResponse(
        found.file.open("rb"),
        as_attachment=True,
        filename=found.path.rsplit("/", 1)[-1],
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _back(organization: Organization, build: Build) -> HttpResponse:
    return redirect(
        "web:build", org=organization.slug, pipeline=build.pipeline.slug, number=build.number
    )


@org_action(Role.MEMBER)
def build_cancel(
    request: HttpRequest, organization: Organization, pipeline: str, number: int
) -> HttpResponse:
    build = _build(request, organization, pipeline, number)
    try:
        services.cancel_build(principal_of(request), build)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Build #{build.number} is being canceled.")
    return _back(organization, build)


@org_action(Role.MEMBER)
def build_unblock(
    request: HttpRequest, organization: Organization, pipeline: str, number: int
) -> HttpResponse:
    build = _build(request, organization, pipeline, number)
    key = request.POST.get("step", "")
    values: dict[str, str | list[str]] = {}
    for name in request.POST:
        if name.startswith("field-"):
            picked = request.POST.getlist(name)
            values[name.removeprefix("field-")] = picked if len(picked) > 1 else picked[0]
    try:
        services.unblock_step(principal_of(request), build, key, values)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied:
        messages.error(request, "This step names who may unblock it (allowed_teams); not you.")
    else:
        messages.success(request, "Unblocked.")
    return _back(organization, build)


@org_action(Role.MEMBER)
def build_retry(
    request: HttpRequest, organization: Organization, pipeline: str, number: int
) -> HttpResponse:
    build = _build(request, organization, pipeline, number)
    raw = request.POST.get("build_job", "")
    if not raw.isdigit():
        raise Http404("No such job in this build.")
    build_job = access.get_build_job_for(principal_of(request), build, int(raw), Role.MEMBER)
    try:
        services.retry_job(principal_of(request), build_job)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Retrying {build_job.step.label}.")
    return _back(organization, build)
