"""Scoped reads of pipelines and builds: other organizations' objects are not found (404)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from bastion.core.access import Principal, require_role
from bastion.core.models import Organization, Role
from bastion.pipelines.models import Build, BuildJob, Pipeline


def pipelines_for(principal: Principal, organization: Organization) -> QuerySet[Pipeline]:
    require_role(principal, organization, Role.VIEWER)
    return (
        Pipeline.objects.filter(organization=organization)
        .select_related("organization", "cluster")
        .order_by("slug")
    )


def get_pipeline_for(
    principal: Principal, organization: Organization, slug: str, minimum: str = Role.VIEWER
) -> Pipeline:
    pipeline = pipelines_for(principal, organization).filter(slug=slug).first()
    if pipeline is None:
        raise Http404("No such pipeline.")
    require_role(principal, organization, minimum)
    return pipeline


def builds_for(principal: Principal, pipeline: Pipeline) -> QuerySet[Build]:
    require_role(principal, pipeline.organization, Role.VIEWER)
    return (
        Build.objects.filter(pipeline=pipeline, organization=pipeline.organization)
        .select_related("pipeline__organization", "pipeline__cluster")
        .order_by("-number")
    )


def get_build_for(
    principal: Principal, pipeline: Pipeline, number: int, minimum: str = Role.VIEWER
) -> Build:
    build = builds_for(principal, pipeline).filter(number=number).first()
    if build is None:
        raise Http404("No such build.")
    require_role(principal, pipeline.organization, minimum)
    return build


def get_build_job_for(
    principal: Principal, build: Build, build_job_id: int, minimum: str = Role.VIEWER
) -> BuildJob:
    found = (
        BuildJob.objects.filter(build=build, pk=build_job_id)
        .select_related("step", "job", "build__pipeline__organization")
        .first()
    )
    if found is None:
        raise Http404("No such job in this build.")
    require_role(principal, build.organization, minimum)
    return found
