"""A cluster's pipeline policy over /api/v1/: read it (viewers), replace it (admins)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.jobs.services import get_cluster_for
from bastion.pipelines import policies

router = Router(tags=["pipelines"])
PATH = "/organizations/{org}/clusters/{cluster}/pipeline-policy"


class PipelinesPolicyRule(Schema):
    pipeline: str = Field(..., max_length=50)
    branches: str = Field("", max_length=500, description="e.g. `main release/*`; empty: any")


class PipelinesPolicyIn(Schema):
    restricted: bool
    rules: list[PipelinesPolicyRule] = Field(default_factory=list, max_length=200)


class PipelinesPolicyOut(Schema):
    cluster: str
    restricted: bool
    rules: list[PipelinesPolicyRule]

    @classmethod
    def of(cls, view: policies.PolicyView) -> PipelinesPolicyOut:
        return cls(
            cluster=view.cluster,
            restricted=view.restricted,
            rules=[
                PipelinesPolicyRule(pipeline=r.pipeline, branches=r.branches) for r in view.rules
            ],
        )


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


@router.get(PATH, response=PipelinesPolicyOut)
def get_policy(request: HttpRequest, org: str, cluster: str) -> PipelinesPolicyOut:
    principal = _principal(request)
    found = get_cluster_for(principal, get_organization_for(principal, org), cluster)
    return PipelinesPolicyOut.of(policies.policy_of(principal, found))


@router.put(PATH, response=PipelinesPolicyOut)
def set_policy(
    request: HttpRequest, org: str, cluster: str, body: PipelinesPolicyIn
) -> PipelinesPolicyOut:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    found = get_cluster_for(principal, organization, cluster, Role.ADMIN)
    rules = [policies.Rule(r.pipeline, r.branches) for r in body.rules]
    return PipelinesPolicyOut.of(
        policies.set_policy(principal, found, restricted=body.restricted, rules=rules)
    )
