"""What a running job may do to its own build, authorized by its job token: meta-data, dynamic
pipeline uploads, annotations and the build's artifacts (``bastion meta-data``, ``pipeline
upload``, ``annotate``, ``artifact``). Each write is one transaction with its audit row.

A job token reaches one job; ``build_job_for`` turns that job into its build, so no call here
can touch another build. Writes need the job to be running (accepted or started).
"""

from __future__ import annotations

import fnmatch
import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal
from bastion.core.redaction import mask_values
from bastion.jobs.errors import JobConflict
from bastion.jobs.logs import job_secrets
from bastion.jobs.models import Artifact, Job, JobState
from bastion.pipelines import cluster_secrets, environment, scheduler
from bastion.pipelines.models import Annotation, AnnotationStyle, Build, BuildJob, BuildStep
from bastion.pipelines.services import new_step_rows
from bastion.pipelines.upload import splice
from bastion.pipelines.yaml import Pipeline as Definition
from bastion.pipelines.yaml import PipelineInvalid, parse_pipeline

MAX_META_KEY = 200
MAX_META_VALUE = 100 * 1024
MAX_META_KEYS = 1000
MAX_ANNOTATION_BYTES = 1024 * 1024
MAX_ARTIFACTS_LISTED = 1000
_CONTEXT = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def build_job_for(job: Job) -> BuildJob:
    """The build job (and its build) of a pipeline job; other jobs have no build (404)."""
    found = (
        BuildJob.objects.filter(job=job)
        .select_related("build__pipeline__organization", "build__organization", "step")
        .first()
    )
    if found is None:
        raise Http404("This job is not part of a build.")
    return found


def _writable(job: Job) -> None:
    if job.state not in (JobState.ACCEPTED, JobState.RUNNING):
        raise JobConflict(f"The job can no longer change its build: it is {job.state}.")


def _actor(build_job: BuildJob) -> Principal:
    build = build_job.build
    return Principal.system(
        organization=build.organization,
        what=f"job:{build_job.job_id} of {build.pipeline.slug}#{build.number}",
    )


def read_secret(job: Job, key: str) -> str:
    """``bastion secret get``: a secret of the job's cluster, when its build may have it."""
    _writable(job)
    build_job = build_job_for(job)
    return cluster_secrets.read_by_job(job, build_job.build, _actor(build_job), key)


# --- meta-data ----------------------------------------------------------------------------------


def set_meta_data(job: Job, key: str, value: str) -> None:
    _writable(job)
    build_job = build_job_for(job)
    if not key.strip() or len(key) > MAX_META_KEY:
        raise ValidationError({"key": [f"A key has 1 to {MAX_META_KEY} characters."]})
    if len(value) > MAX_META_VALUE:
        raise ValidationError({"value": [f"A value has at most {MAX_META_VALUE} characters."]})
    with transaction.atomic():
        build = Build.objects.select_for_update().get(pk=build_job.build_id)
        meta = dict(build.meta_data or {})
        if key not in meta and len(meta) >= MAX_META_KEYS:
            raise ValidationError({"key": [f"A build holds at most {MAX_META_KEYS} keys."]})
        meta[key] = value
        build.meta_data = meta
        build.save(update_fields=["meta_data"])
        # The value may be a secret: the audit row names the key only.
        audit.record(
            _actor(build_job).actor,
            "build.meta_data_set",
            organization=build.organization,
            target=build,
            object_repr=f"{build.pipeline}#{build.number}",
            changes={"key": key, "job": job.pk},
        )


def get_meta_data(job: Job, key: str) -> str:
    build = build_job_for(job).build
    value = (build.meta_data or {}).get(key)
    if value is None:
        raise Http404("No such meta-data key on this build.")
    return str(value)


def meta_data_keys(job: Job) -> list[str]:
    return sorted((build_job_for(job).build.meta_data or {}).keys())


# --- dynamic pipelines ----------------------------------------------------------------------------


def upload_pipeline(job: Job, text: str) -> list[str]:
    """Add the uploaded steps to the build after the uploading step; returns their keys."""
    _writable(job)
    build_job = build_job_for(job)
    with transaction.atomic():
        build = (
            Build.objects.select_for_update()
            .select_related("pipeline__organization", "organization")
            .get(pk=build_job.build_id)
        )
        if build.is_finished or build.cancel_requested_at is not None:
            raise JobConflict("The build has finished or is being canceled.")
        try:
            merged = splice(build.pipeline_yaml, text, build_job.step.key)  # at most 1 MB
            definition = parse_pipeline(merged, environment.interpolation_env(build))
        except PipelineInvalid as exc:
            raise ValidationError({"yaml": exc.messages()}) from exc
        cluster_secrets.check_step_secrets(build.pipeline.cluster, definition)
        build.pipeline_yaml = merged
        build.save(update_fields=["pipeline_yaml"])
        added = _sync_steps(build, definition)
        audit.record(
            _actor(build_job).actor,
            "build.pipeline_upload",
            organization=build.organization,
            target=build,
            object_repr=f"{build.pipeline}#{build.number}",
            changes={"job": job.pk, "step": build_job.step.key, "added": added},
        )
        scheduler.advance_build(build.pk)
    return added


def _sync_steps(build: Build, definition: Definition) -> list[str]:
    """Create the rows of new steps; renumber and re-link the existing ones (a ``wait`` after
    the uploading step now also waits for the uploaded steps)."""
    rows = new_step_rows(build, definition)
    existing = {row.key: row for row in BuildStep.objects.filter(build=build)}
    added: list[str] = []
    fresh: list[BuildStep] = []
    for row in rows:
        current = existing.get(row.key)
        if current is None:
            added.append(row.key)
            fresh.append(row)
            continue
        current.position = row.position
        if not current.is_finished:
            current.needs = row.needs
    BuildStep.objects.bulk_update(list(existing.values()), ["position", "needs"])
    BuildStep.objects.bulk_create(fresh)
    return added


# --- annotations --------------------------------------------------------------------------------


def annotate(
    job: Job, body: str, *, context: str = "default", style: str = "default", append: bool = False
) -> Annotation:
    _writable(job)
    build_job = build_job_for(job)
    errors: dict[str, list[str]] = {}
    if not _CONTEXT.match(context):
        errors["context"] = ["A context has 1 to 100 letters, digits, or . _ : -."]
    if style not in AnnotationStyle.values:
        errors["style"] = [f"Choose among: {', '.join(AnnotationStyle.values)}."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        build = Build.objects.select_for_update().get(pk=build_job.build_id)
        annotation = Annotation.objects.filter(build=build, context=context).first()
        created = annotation is None
        if annotation is None:
            annotation = Annotation(build=build, context=context, body="")
        body = mask_values(body, job_secrets(job))  # the job's secrets never reach the page
        annotation.body = (annotation.body + body) if append else body
        if len(annotation.body.encode("utf-8", errors="replace")) > MAX_ANNOTATION_BYTES:
            raise ValidationError({"body": [f"An annotation holds {MAX_ANNOTATION_BYTES} bytes."]})
        annotation.style = style
        annotation.updated_at = timezone.now()
        annotation.save()
        audit.record(
            _actor(build_job).actor,
            "build.annotate",
            organization=build.organization,
            target=build,
            object_repr=f"{build_job.build.pipeline}#{build.number}",
            changes={"context": context, "style": style, "created": created, "append": append},
        )
    return annotation


# --- artifacts of the build ------------------------------------------------------------------------


def build_artifacts(job: Job, pattern: str = "*") -> list[Artifact]:
    """Artifacts of every job of the caller's build whose path matches the glob ``pattern``."""
    build = build_job_for(job).build
    found = (
        Artifact.objects.filter(job__build_job__build=build)
        .select_related("job")
        .order_by("path", "-created_at")[:MAX_ARTIFACTS_LISTED]
    )
    seen: set[str] = set()
    result = []
    for artifact in found:
        if artifact.path in seen or not fnmatch.fnmatchcase(artifact.path, pattern or "*"):
            continue
        seen.add(artifact.path)  # the latest upload of a path wins
        result.append(artifact)
    return result


def build_artifact(job: Job, artifact_id: int) -> Artifact:
    build = build_job_for(job).build
    artifact = Artifact.objects.filter(pk=artifact_id, job__build_job__build=build).first()
    if artifact is None:
        raise Http404("No such artifact in this build.")
    return artifact
