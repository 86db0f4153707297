"""Artifacts a job uploads: stored through Django's storage API with their SHA-256."""

from __future__ import annotations

import hashlib
import posixpath
import re

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from bastion.jobs.errors import JobConflict, TooLarge
from bastion.jobs.models import Artifact, Job, JobState

DEFAULT_ARTIFACT_MAX_BYTES = 100 * 1024 * 1024
# The agent API path artifacts are uploaded to; the body-size middleware allows it more.
UPLOAD_PATH_PREFIX = "/api/v1/agent/artifacts/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def artifact_max_bytes() -> int:
    return int(getattr(settings, "BASTION_ARTIFACT_MAX_BYTES", DEFAULT_ARTIFACT_MAX_BYTES))


def _clean_path(path: str) -> str:
    path = path.strip().replace("\\", "/").replace("\x00", "")
    normalized = posixpath.normpath(path) if path else ""
    if (
        not normalized
        or normalized in {".", ".."}
        or normalized.startswith(("/", "../"))
        or len(normalized) > 500
    ):
        raise JobConflict("An artifact path must be a relative path inside the job, 1-500 chars.")
    return normalized


def upload_artifact(job: Job, path: str, upload: UploadedFile, content_type: str = "") -> Artifact:
    """Store one artifact. Re-uploading identical content under the same path changes nothing."""
    clean = _clean_path(path)
    limit = artifact_max_bytes()
    if upload.size is not None and upload.size > limit:
        raise TooLarge(f"The artifact is {upload.size} bytes; the limit is {limit}.")
    if job.state not in (JobState.ACCEPTED, JobState.RUNNING):
        raise JobConflict(f"The job takes no more artifacts: it is {job.state}.")
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The artifact is larger than the limit of {limit} bytes.")
    sha256 = digest.hexdigest()
    existing = Artifact.objects.filter(job=job, path=clean).first()
    if existing is not None:
        if existing.sha256 == sha256:
            return existing
        raise JobConflict("An artifact with that path and different content already exists.")
    upload.seek(0)
    artifact = Artifact(
        job=job,
        path=clean,
        size=size,
        sha256=sha256,
        content_type=content_type.replace("\x00", "")[:100],
    )
    name = _UNSAFE.sub("_", posixpath.basename(clean))[:200] or "artifact"
    artifact.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            artifact.save()
    except IntegrityError as exc:
        artifact.file.delete(save=False)
        raise JobConflict("An artifact with that path was uploaded at the same time.") from exc
    return artifact
