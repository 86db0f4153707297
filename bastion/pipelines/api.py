"""Pipelines and builds over /api/v1/: parse, fetch through the scoped helpers, delegate.

Route order matters to nobody but the OpenAPI document: the pipeline detail path (with its
DELETE) is registered last so that walkers of the document visit builds before the pipeline.
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.jobs.services import get_cluster_for
from bastion.pipelines import access, services
from bastion.pipelines.job_api import router as job_router
from bastion.pipelines.models import Build
from bastion.pipelines.schedule_api import router as schedule_router
from bastion.pipelines.schemas import (
    BuildIn,
    BuildOut,
    BuildSummaryOut,
    PipelineIn,
    PipelineOut,
    PipelinePatch,
    UnblockIn,
)

router = Router(tags=["pipelines"])
# What a running job does to its own build, with its job token: /api/v1/agent/jobs/{job_id}/...
router.add_router("/agent", job_router)
router.add_router("/", schedule_router)
MAX_PAGE = 100
BASE = "/organizations/{org}/pipelines"


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


def _last_build(pipeline_id: int) -> Build | None:
    return Build.objects.filter(pipeline_id=pipeline_id).order_by("-number").first()


@router.get(BASE, response=list[PipelineOut])
def list_pipelines(request: HttpRequest, org: str) -> list[PipelineOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    latest = Build.objects.filter(pipeline=OuterRef("pk")).order_by("-number").values("pk")[:1]
    pipelines = access.pipelines_for(principal, organization).annotate(last=Subquery(latest))
    rows = list(pipelines[:MAX_PAGE])
    builds = Build.objects.in_bulk([p.last for p in rows if p.last])
    return [PipelineOut.of(p, builds.get(p.last)) for p in rows]


@router.post(BASE, response={201: PipelineOut})
def create_pipeline(request: HttpRequest, org: str, body: PipelineIn) -> Status[PipelineOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    cluster = get_cluster_for(principal, organization, body.cluster, Role.ADMIN)
    pipeline = services.create_pipeline(
        principal,
        organization,
        slug=body.slug,
        yaml=body.yaml,
        cluster=cluster,
        name=body.name,
        description=body.description,
        repository=body.repository,
        default_branch=body.default_branch,
    )
    out = PipelineOut.of(pipeline)
    out.warnings = list(services.check_yaml(pipeline.yaml).warnings)
    return Status(201, out)


@router.get(BASE + "/{pipeline}/builds", response=list[BuildSummaryOut])
def list_builds(
    request: HttpRequest, org: str, pipeline: str, limit: int = 50
) -> list[BuildSummaryOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = access.get_pipeline_for(principal, organization, pipeline)
    limit = max(1, min(limit, MAX_PAGE))
    return [BuildSummaryOut.of(b) for b in access.builds_for(principal, found)[:limit]]


@router.post(BASE + "/{pipeline}/builds", response={201: BuildOut})
def create_build(request: HttpRequest, org: str, pipeline: str, body: BuildIn) -> Status[BuildOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = access.get_pipeline_for(principal, organization, pipeline, Role.MEMBER)
    build = services.create_build(
        principal,
        found,
        branch=body.branch,
        commit=body.commit,
        message=body.message,
        env=body.env,
        meta_data=body.meta_data,
    )
    return Status(201, BuildOut.detail(build))


def _build(
    request: HttpRequest, org: str, pipeline: str, number: int, minimum: str = Role.VIEWER
) -> Build:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = access.get_pipeline_for(principal, organization, pipeline, minimum)
    return access.get_build_for(principal, found, number, minimum)


@router.get(BASE + "/{pipeline}/builds/{number}", response=BuildOut)
def get_build(request: HttpRequest, org: str, pipeline: str, number: int) -> BuildOut:
    return BuildOut.detail(_build(request, org, pipeline, number))


@router.post(BASE + "/{pipeline}/builds/{number}/steps/{step_key}/unblock", response=BuildOut)
def unblock_step(
    request: HttpRequest, org: str, pipeline: str, number: int, step_key: str, body: UnblockIn
) -> BuildOut:
    build = _build(request, org, pipeline, number, Role.MEMBER)
    services.unblock_step(_principal(request), build, step_key, body.fields)
    build.refresh_from_db()
    return BuildOut.detail(build)


@router.post(BASE + "/{pipeline}/builds/{number}/jobs/{build_job_id}/retry", response=BuildOut)
def retry_job(
    request: HttpRequest, org: str, pipeline: str, number: int, build_job_id: int
) -> BuildOut:
    principal = _principal(request)
    build = _build(request, org, pipeline, number, Role.MEMBER)
    build_job = access.get_build_job_for(principal, build, build_job_id, Role.MEMBER)
    services.retry_job(principal, build_job)
    build.refresh_from_db()
    return BuildOut.detail(build)


@router.post(BASE + "/{pipeline}/builds/{number}/cancel", response=BuildOut)
def cancel_build(request: HttpRequest, org: str, pipeline: str, number: int) -> BuildOut:
    build = _build(request, org, pipeline, number, Role.MEMBER)
    return BuildOut.detail(services.cancel_build(_principal(request), build))


@router.get(BASE + "/{pipeline}", response=PipelineOut)
def get_pipeline(request: HttpRequest, org: str, pipeline: str) -> PipelineOut:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = access.get_pipeline_for(principal, organization, pipeline)
    return PipelineOut.of(found, _last_build(found.pk))


@router.patch(BASE + "/{pipeline}", response=PipelineOut)
def update_pipeline(
    request: HttpRequest, org: str, pipeline: str, body: PipelinePatch
) -> PipelineOut:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = access.get_pipeline_for(principal, organization, pipeline, Role.ADMIN)
    cluster = (
        get_cluster_for(principal, organization, body.cluster, Role.ADMIN)
        if body.cluster is not None
        else None
    )
    updated = services.update_pipeline(
        principal,
        found,
        yaml=body.yaml,
        name=body.name,
        description=body.description,
        repository=body.repository,
        default_branch=body.default_branch,
        cluster=cluster,
    )
    out = PipelineOut.of(updated, _last_build(updated.pk))
    out.warnings = list(services.check_yaml(updated.yaml).warnings)
    return out


@router.delete(BASE + "/{pipeline}", response={204: None})
def delete_pipeline(request: HttpRequest, org: str, pipeline: str) -> Status[None]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = access.get_pipeline_for(principal, organization, pipeline, Role.ADMIN)
    services.delete_pipeline(principal, found)
    return Status(204, None)
