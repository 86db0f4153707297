"""Calls a running job makes on its own build, under /api/v1/agent/jobs/{job_id}/, with its job
token (``Authorization: Token bstjob_...``): meta-data, pipeline upload, annotations, artifacts.

The token names one job; ``_job`` refuses any other job id, and ``bastion.pipelines.jobside``
reaches only that job's build. Mounted inside the pipelines router.
"""

from __future__ import annotations

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.jobs import dispatch
from bastion.jobs.agent_api import _translated, job_auth
from bastion.jobs.models import Artifact, Job
from bastion.pipelines import jobside

router = Router(tags=["agent"], auth=job_auth)
BASE = "/jobs/{job_id}"


def _job(request: HttpRequest, job_id: int) -> Job:
    with _translated():
        return dispatch.job_for_token(str(request.auth), job_id)  # type: ignore[attr-defined]


class MetaDataIn(Schema):
    key: str = Field(..., min_length=1, max_length=jobside.MAX_META_KEY)
    value: str = Field(..., max_length=jobside.MAX_META_VALUE)


class MetaDataOut(Schema):
    key: str
    value: str


class KeysOut(Schema):
    keys: list[str]


class UploadIn(Schema):
    yaml: str = Field(..., max_length=1024 * 1024)


class UploadOut(Schema):
    added: list[str]


class AnnotationIn(Schema):
    body: str = Field(..., max_length=jobside.MAX_ANNOTATION_BYTES)
    context: str = Field("default", max_length=100)
    style: str = Field("default", max_length=10)
    append: bool = False


class AnnotationOut(Schema):
    context: str
    style: str
    body: str


class BuildArtifactOut(Schema):
    id: int
    job_id: int
    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, artifact: Artifact) -> BuildArtifactOut:
        return cls(
            id=artifact.pk,
            job_id=artifact.job_id,
            path=artifact.path,
            size=artifact.size,
            sha256=artifact.sha256,
        )


@router.post(BASE + "/meta-data", response={201: MetaDataOut})
def set_meta_data(request: HttpRequest, job_id: int, body: MetaDataIn) -> Status[MetaDataOut]:
    job = _job(request, job_id)
    with _translated():
        jobside.set_meta_data(job, body.key, body.value)
    return Status(201, MetaDataOut(key=body.key, value=body.value))


@router.get(BASE + "/meta-data", response=KeysOut)
def meta_data_keys(request: HttpRequest, job_id: int) -> KeysOut:
    return KeysOut(keys=jobside.meta_data_keys(_job(request, job_id)))


@router.get(BASE + "/meta-data/{key}", response=MetaDataOut)
def get_meta_data(request: HttpRequest, job_id: int, key: str) -> MetaDataOut:
    value = jobside.get_meta_data(_job(request, job_id), key)
    return MetaDataOut(key=key, value=value)


class SecretOut(Schema):
    key: str
    value: str


@router.get(BASE + "/secrets/{key}", response=SecretOut)
def get_secret(request: HttpRequest, job_id: int, key: str) -> SecretOut:
    """A cluster secret the job's build may have (404 otherwise); audited, added to the job's
    log redaction."""
    value = jobside.read_secret(_job(request, job_id), key[:100])
    return SecretOut(key=key, value=value)


@router.post(BASE + "/pipeline", response={201: UploadOut})
def upload_pipeline(request: HttpRequest, job_id: int, body: UploadIn) -> Status[UploadOut]:
    job = _job(request, job_id)
    with _translated():
        added = jobside.upload_pipeline(job, body.yaml)
    return Status(201, UploadOut(added=added))


@router.post(BASE + "/annotations", response={201: AnnotationOut})
def annotate(request: HttpRequest, job_id: int, body: AnnotationIn) -> Status[AnnotationOut]:
    job = _job(request, job_id)
    with _translated():
        note = jobside.annotate(
            job, body.body, context=body.context, style=body.style, append=body.append
        )
    return Status(201, AnnotationOut(context=note.context, style=note.style, body=note.body))


@router.get(BASE + "/build-artifacts", response=list[BuildArtifactOut])
def list_build_artifacts(
    request: HttpRequest, job_id: int, pattern: str = "*"
) -> list[BuildArtifactOut]:
    job = _job(request, job_id)
    return [BuildArtifactOut.of(a) for a in jobside.build_artifacts(job, pattern[:500])]


@router.get(
    BASE + "/build-artifacts/{artifact_id}",
    openapi_extra={"responses": {200: {"content": {"application/octet-stream": {"schema": {}}}}}},
)
def download_build_artifact(request: HttpRequest, job_id: int, artifact_id: int) -> FileResponse:
    artifact = jobside.build_artifact(_job(request, job_id), artifact_id)
    return FileResponse(
        artifact.file.open("rb"),
        as_attachment=True,
        filename=artifact.path.rsplit("/", 1)[-1],
        content_type="application/octet-stream",
    )
