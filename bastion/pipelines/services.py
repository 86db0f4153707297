"""Named actions on pipelines and builds. Each runs in one transaction with its audit row.

Builds are advanced by ``bastion.pipelines.scheduler``; the actions here change what people ask
for (a build, a cancel, a retry, an unblock) and then let the scheduler take it from there.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.http import Http404
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.models import Organization, Role, User, role_at_least, slug_validator
from bastion.jobs import dispatch
from bastion.jobs.models import FINISHED_STATES, Cluster, JobState
from bastion.pipelines import cluster_secrets, environment, scheduler
from bastion.pipelines.models import (
    STEP_FINISHED,
    Build,
    BuildJob,
    BuildState,
    BuildStep,
    Pipeline,
    PipelineSchedule,
    StepState,
)
from bastion.pipelines.repository import check_repository
from bastion.pipelines.yaml import (
    BlockStep,
    CommandStep,
    ExpressionError,
    PipelineInvalid,
    SelectField,
    TriggerStep,
    parse_pipeline,
)
from bastion.pipelines.yaml import Pipeline as Definition
from bastion.pipelines.yaml import attributes as attr
from bastion.pipelines.yaml.load import AnyVariable

MAX_TRIGGER_DEPTH = 10
MAX_ENV = 100
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_yaml(text: str) -> Definition:
    """Validate a pipeline file as stored (variables are only known per build)."""
    try:
        return parse_pipeline(text, AnyVariable())
    except PipelineInvalid as exc:
        raise ValidationError({"yaml": exc.messages()}) from exc


def check_env(env: Mapping[str, Any], field: str = "env") -> dict[str, str]:
    if len(env) > MAX_ENV:
        raise ValidationError({field: [f"At most {MAX_ENV} variables."]})
    bad = [k for k in env if not isinstance(k, str) or not _ENV_NAME.match(k)]
    if bad:
        raise ValidationError({field: [f"Not a variable name: {bad[0]!r}."]})
    return {k: str(v) for k, v in env.items()}


# --- pipelines ----------------------------------------------------------------------------------


def create_pipeline(
    principal: Principal,
    organization: Organization,
    *,
    slug: str,
    yaml: str,
    cluster: Cluster,
    name: str = "",
    description: str = "",
    repository: str = "",
    default_branch: str = "main",
) -> Pipeline:
    require_role(principal, organization, Role.ADMIN)
    if cluster.organization_id != organization.pk:
        raise Http404("No such cluster.")
    repository = check_repository(repository)
    errors: dict[str, list[str]] = {}
    try:
        slug_validator(slug)
    except ValidationError as exc:
        errors["slug"] = list(exc.messages)
    if Pipeline.objects.filter(organization=organization, slug=slug).exists():
        errors["slug"] = [f"A pipeline {slug!r} already exists."]
    if not default_branch.strip():
        errors["default_branch"] = ["The default branch cannot be empty."]
    if errors:
        raise ValidationError(errors)
    definition = check_yaml(yaml)
    with transaction.atomic():
        pipeline = Pipeline.objects.create(
            organization=organization,
            slug=slug,
            name=name or slug,
            description=description,
            cluster=cluster,
            yaml=yaml,
            repository=repository,
            default_branch=default_branch,
            created_by=principal.actor.label[:200],
        )
        audit.record(
            principal.actor,
            "pipeline.create",
            organization=organization,
            target=pipeline,
            changes={"cluster": cluster.name, "steps": len(definition.steps)},
        )
    return pipeline


def update_pipeline(
    principal: Principal,
    pipeline: Pipeline,
    *,
    yaml: str | None = None,
    name: str | None = None,
    description: str | None = None,
    repository: str | None = None,
    default_branch: str | None = None,
    cluster: Cluster | None = None,
) -> Pipeline:
    require_role(principal, pipeline.organization, Role.ADMIN)
    if cluster is not None and cluster.organization_id != pipeline.organization_id:
        raise Http404("No such cluster.")
    if yaml is not None:
        check_yaml(yaml)
    if repository is not None:
        repository = check_repository(repository)
    if default_branch is not None and not default_branch.strip():
        raise ValidationError({"default_branch": ["The default branch cannot be empty."]})
    fields = ("name", "description", "repository", "default_branch", "yaml")
    before = {f: getattr(pipeline, f) for f in fields} | {"cluster": pipeline.cluster.name}
    for name_, value in (
        ("yaml", yaml),
        ("name", name),
        ("description", description),
        ("repository", repository),
        ("default_branch", default_branch),
        ("cluster", cluster),
    ):
        if value is not None:
            setattr(pipeline, name_, value)
    after = {f: getattr(pipeline, f) for f in fields} | {"cluster": pipeline.cluster.name}
    changes = audit.diff(before, after)
    if "yaml" in changes:
        changes["yaml"] = "changed"  # the file itself is kept on the pipeline and each build
    with transaction.atomic():
        pipeline.updated_at = timezone.now()
        pipeline.save()
        audit.record(
            principal.actor,
            "pipeline.update",
            organization=pipeline.organization,
            target=pipeline,
            changes=changes,
        )
    return pipeline


def rotate_webhook_secret(principal: Principal, pipeline: Pipeline) -> str:
    """A new webhook secret for GitHub and GitLab (shown once; stored encrypted)."""
    require_role(principal, pipeline.organization, Role.ADMIN)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        pipeline.webhook_secret = crypto.encrypt(secret)
        pipeline.updated_at = timezone.now()
        pipeline.save(update_fields=["webhook_secret", "updated_at"])
        audit.record(
            principal.actor,
            "pipeline.webhook_secret",
            organization=pipeline.organization,
            target=pipeline,
            changes={"webhook_secret": "rotated"},
        )
    return secret


def delete_pipeline(principal: Principal, pipeline: Pipeline) -> None:
    """Delete a pipeline and its builds; jobs still running are canceled (their rows stay)."""
    require_role(principal, pipeline.organization, Role.ADMIN)
    with transaction.atomic():
        active = BuildJob.objects.filter(build__pipeline=pipeline, job__isnull=False).exclude(
            job__state__in=FINISHED_STATES
        )
        canceled = 0
        for build_job in active.select_related("job__organization"):
            assert build_job.job is not None
            dispatch.cancel_job(principal, build_job.job)
            canceled += 1
        audit.record(
            principal.actor,
            "pipeline.delete",
            organization=pipeline.organization,
            target=pipeline,
            changes={"builds": pipeline.builds.count(), "jobs_canceled": canceled},
        )
        pipeline.delete()


# --- builds -------------------------------------------------------------------------------------


def new_step_rows(build: Build, definition: Definition) -> list[BuildStep]:
    """Unsaved rows of every step of ``definition`` for ``build``, skips decided."""
    context = environment.condition_context(build)
    rows = []
    for position, step in enumerate(definition.steps):
        try:
            runs = step.runs_for(context)
        except ExpressionError as exc:
            raise ValidationError({"yaml": [f"step {step.key}: `if`: {exc}"]}) from exc
        skip = getattr(step, "skip", None)
        state, reason = StepState.WAITING, ""
        if not runs:
            state, reason = StepState.SKIPPED, "branches" if step.branches else "if"
        elif skip:
            state, reason = StepState.SKIPPED, str(skip)
        rows.append(
            BuildStep(
                build=build,
                key=step.key,
                type=step.type,
                label=step.label,
                position=position,
                group_key=step.group or "",
                needs=[{"key": d.key, "allow_failure": d.allow_failure} for d in step.needs],
                state=state,
                skip_reason=reason[:200],
                finished_at=timezone.now() if state == StepState.SKIPPED else None,
            )
        )
    return rows


def _new_build(
    principal: Principal,
    pipeline: Pipeline,
    *,
    branch: str,
    commit: str,
    message: str,
    env: dict[str, str],
    meta_data: dict[str, str],
    source: str,
    created_by: str,
    triggered_from: BuildStep | None = None,
    schedule: PipelineSchedule | None = None,
    creator: User | None = None,
    origin: Mapping[str, Any] | None = None,
) -> Build:
    Pipeline.objects.select_for_update().filter(pk=pipeline.pk).first()
    number = (pipeline.builds.aggregate(m=Max("number"))["m"] or 0) + 1
    build = Build(
        organization=pipeline.organization,
        pipeline=pipeline,
        number=number,
        branch=branch,
        commit=commit,
        message=message,
        env=env,
        meta_data=meta_data,
        source=source,
        pipeline_yaml=pipeline.yaml,
        created_by=created_by[:200],
        triggered_from=triggered_from,
        schedule=schedule,
        creator=creator,
        origin=dict(origin or {}),
    )
    build.save()
    try:
        definition = scheduler.definition(build)
    except PipelineInvalid as exc:
        raise ValidationError({"yaml": exc.messages()}) from exc
    cluster_secrets.check_step_secrets(pipeline.cluster, definition)
    BuildStep.objects.bulk_create(new_step_rows(build, definition))
    audit.record(
        principal.actor,
        "build.create",
        organization=pipeline.organization,
        target=build,
        object_repr=f"{pipeline}#{number}",
        changes={"branch": branch, "commit": commit, "source": source, "env": sorted(env)}
        | ({"schedule": schedule.pk} if schedule is not None else {}),
    )
    return build


def create_build(
    principal: Principal,
    pipeline: Pipeline,
    *,
    branch: str | None = None,
    commit: str = "HEAD",
    message: str = "",
    env: Mapping[str, Any] | None = None,
    meta_data: Mapping[str, Any] | None = None,
    source: str = "api",
    schedule: PipelineSchedule | None = None,
    origin: Mapping[str, Any] | None = None,
) -> Build:
    """Start a build; its first steps are scheduled before this returns. ``origin`` is what a
    webhook said of the commit's author and the pull request (``Build.origin``)."""
    require_role(principal, pipeline.organization, Role.MEMBER)
    branch = (branch or pipeline.default_branch).strip()
    if not branch or len(branch) > 200:
        raise ValidationError({"branch": ["The branch must have 1 to 200 characters."]})
    if not commit.strip() or len(commit) > 100:
        raise ValidationError({"commit": ["The commit must have 1 to 100 characters."]})
    checked_env = check_env(env or {})
    checked_meta = {str(k): str(v) for k, v in (meta_data or {}).items()}
    with transaction.atomic():
        build = _new_build(
            principal,
            pipeline,
            branch=branch,
            commit=commit.strip(),
            message=message,
            env=checked_env,
            meta_data=checked_meta,
            source=source,
            created_by=principal.actor.label,
            schedule=schedule,
            creator=_creator(principal),
            origin=origin,
        )
        scheduler.advance_build(build.pk)
    build.refresh_from_db()
    return build


def _creator(principal: Principal) -> User | None:
    """The person behind a build: the signed-in user, or the user who made the API token."""
    if principal.user is not None:
        return principal.user
    return principal.token.created_by if principal.token is not None else None


def _trigger_depth(build: Build) -> int:
    depth, current = 0, build
    for _ in range(MAX_TRIGGER_DEPTH + 1):
        if current.triggered_from_id is None:
            break
        depth += 1
        parent = BuildStep.objects.select_related("build").get(pk=current.triggered_from_id)
        current = parent.build
    return depth


def trigger_build(parent: Build, row: BuildStep, step: TriggerStep) -> Build:
    """A trigger step's build of another pipeline of the same organization."""
    target = Pipeline.objects.filter(organization=parent.organization, slug=step.pipeline).first()
    if target is None:
        raise ValueError(f"no pipeline {step.pipeline!r} in this organization")
    if _trigger_depth(parent) >= MAX_TRIGGER_DEPTH:
        raise ValueError(f"triggered builds nest at most {MAX_TRIGGER_DEPTH} deep")
    build = _new_build(
        scheduler.scheduler_principal(parent),
        target,
        branch=step.build.branch or target.default_branch,
        commit=step.build.commit or "HEAD",
        message=step.build.message if step.build.message is not None else parent.message,
        env=check_env(step.build.env),
        meta_data=dict(step.build.meta_data),
        source="trigger_job",
        created_by=parent.created_by,
        triggered_from=row,
        creator=parent.creator,
    )
    scheduler.advance_build(build.pk)
    return build


def cancel_build(principal: Principal, build: Build) -> Build:
    require_role(principal, build.organization, Role.MEMBER)
    with transaction.atomic():
        build = Build.objects.select_for_update().get(pk=build.pk)
        if build.is_finished:
            raise ValidationError({"state": [f"The build has already finished ({build.state})."]})
        if build.cancel_requested_at is None:
            build.cancel_requested_at = timezone.now()
            build.save(update_fields=["cancel_requested_at"])
            audit.record(
                principal.actor,
                "build.cancel",
                organization=build.organization,
                target=build,
                changes={"state": build.state},
            )
        running = BuildJob.objects.filter(build=build, job__isnull=False, superseded=False).exclude(
            job__state__in=FINISHED_STATES
        )
        for build_job in running.select_related("job__organization"):
            assert build_job.job is not None
            dispatch.cancel_job(principal, build_job.job)
        scheduler.advance_build(build.pk)
    build.refresh_from_db()
    return build


def retry_job(principal: Principal, build_job: BuildJob) -> BuildJob:
    """Run a finished job of a build again (``retry.manual``); the build resumes if it ended."""
    build = build_job.build
    require_role(principal, build.organization, Role.MEMBER)
    step = scheduler.definition(build).step(build_job.step.key)
    if not isinstance(step, CommandStep):
        raise ValidationError({"job": ["Only command jobs can be retried."]})
    job = build_job.job
    if build_job.superseded:
        raise ValidationError({"job": ["This job was already retried."]})
    if job is None or not job.is_finished:
        raise ValidationError({"job": ["The job has not finished."]})
    if not step.retry_manual.allowed:
        reason = step.retry_manual.reason or "retry.manual is off for this step"
        raise ValidationError({"job": [f"This job cannot be retried: {reason}."]})
    if job.state == JobState.PASSED and not step.retry_manual.permit_on_passed:
        raise ValidationError({"job": ["The job passed; this step does not permit retrying it."]})
    if build.cancel_requested_at is not None:
        raise ValidationError({"build": ["The build was canceled."]})
    with transaction.atomic():
        Build.objects.select_for_update().filter(pk=build.pk).first()
        fresh = scheduler.new_attempt(build_job, principal.actor.label[:200])
        BuildStep.objects.filter(pk=build_job.step_id).update(
            state=StepState.RUNNING, finished_at=None
        )
        # Dependents that were not run because of this failure may run after all, and the
        # groups that failed with it are decided again when their steps finish.
        BuildStep.objects.filter(build=build, state=StepState.BROKEN).update(
            state=StepState.WAITING, finished_at=None
        )
        BuildStep.objects.filter(build=build, type="group", state=StepState.FAILED).update(
            state=StepState.WAITING, finished_at=None
        )
        if build.is_finished:
            Build.objects.filter(pk=build.pk).update(state=BuildState.RUNNING, finished_at=None)
        audit.record(
            principal.actor,
            "build.retry_job",
            organization=build.organization,
            target=build,
            changes={"step": build_job.step.key, "job": job.pk, "attempt": fresh.attempt},
        )
        scheduler.advance_build(build.pk)
    fresh.refresh_from_db()
    return fresh


def _field_values(step: BlockStep, values: Mapping[str, Any]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    result: dict[str, str] = {}
    known = {f.key for f in step.fields}
    for key in values:
        if key not in known:
            errors[key] = ["This step has no such field."]
    for field in step.fields:
        raw = values.get(field.key)
        if isinstance(field, SelectField):
            chosen = (
                [str(v) for v in raw]
                if isinstance(raw, list)
                else ([str(raw)] if raw not in (None, "") else list(field.default))
            )
            allowed = {o.value for o in field.options}
            if any(v not in allowed for v in chosen):
                errors[field.key] = [f"Choose among: {', '.join(sorted(allowed))}."]
            elif len(chosen) > 1 and not field.multiple:
                errors[field.key] = ["Choose one value."]
            elif chosen:
                result[field.key] = "\n".join(chosen)
            elif field.required:
                errors[field.key] = ["This field is required."]
            continue
        text = str(raw) if raw not in (None, "") else (field.default or "")
        if not text:
            if field.required:
                errors[field.key] = ["This field is required."]
            continue
        if field.format and not re.fullmatch(field.format, text):
            errors[field.key] = [f"Does not match the format {field.format}."]
            continue
        result[field.key] = text[:10_000]
    if errors:
        raise ValidationError(errors)
    return result


def unblock_role(step: BlockStep) -> str | None:
    """The least role that may unblock ``step`` (its ``allowed_teams``); None: any member."""
    return attr.unblock_role(step.allowed_teams)


def may_unblock(principal: Principal, build: Build, step: BlockStep) -> bool:
    role = principal.role_in(build.organization)
    return role is not None and role_at_least(role, unblock_role(step) or Role.MEMBER)


def unblock_step(
    principal: Principal, build: Build, key: str, values: Mapping[str, Any] | None = None
) -> BuildStep:
    """Unblock a block or input step; its field values become build meta-data. A step with
    ``allowed_teams`` is unblocked only by the roles it names (403 for others)."""
    require_role(principal, build.organization, Role.MEMBER)
    row = BuildStep.objects.filter(build=build, key=key).first()
    if row is None:
        raise Http404("No such step in this build.")
    step = scheduler.definition(build).step(key)
    if not isinstance(step, BlockStep):
        raise ValidationError({"step": ["Only block and input steps can be unblocked."]})
    require_role(principal, build.organization, unblock_role(step) or Role.MEMBER)
    if row.state != StepState.BLOCKED:
        raise ValidationError({"step": [f"The step is not blocked ({row.state})."]})
    meta = _field_values(step, values or {})
    with transaction.atomic():
        locked = Build.objects.select_for_update().get(pk=build.pk)
        changed = BuildStep.objects.filter(pk=row.pk, state=StepState.BLOCKED).update(
            state=StepState.PASSED,
            finished_at=timezone.now(),
            unblocked_by=principal.actor.label[:200],
            unblocked_at=timezone.now(),
        )
        if not changed:
            raise ValidationError({"step": ["The step was unblocked already."]})
        locked.meta_data = {**(locked.meta_data or {}), **meta}
        locked.save(update_fields=["meta_data"])
        audit.record(
            principal.actor,
            "build.unblock",
            organization=build.organization,
            target=locked,
            changes={"step": key, "fields": sorted(meta)},
        )
        scheduler.advance_build(build.pk)
    row.refresh_from_db()
    return row


def step_finished(row: BuildStep) -> bool:
    return row.state in STEP_FINISHED
