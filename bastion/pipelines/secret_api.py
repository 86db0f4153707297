"""A cluster's secrets over /api/v1/: list and read their metadata (viewers), create, update and
delete them (admins). Values are write-only: no response carries one."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.jobs.models import Cluster
from bastion.jobs.services import get_cluster_for
from bastion.pipelines import cluster_secrets, policies
from bastion.pipelines.policy_api import PipelinesPolicyRule

router = Router(tags=["pipelines"])
PATH = "/organizations/{org}/clusters/{cluster}/secrets"
ONE = PATH + "/{key}"


class ClusterSecretIn(Schema):
    key: str = Field(..., min_length=1, max_length=100, description="e.g. DEPLOY_TOKEN")
    value: str = Field(..., min_length=1, max_length=cluster_secrets.MAX_VALUE)
    description: str = Field("", max_length=500)
    rules: list[PipelinesPolicyRule] = Field(
        default_factory=list,
        max_length=policies.MAX_RULES,
        description="pipelines (and their branches) that may have it; empty: any",
    )


class ClusterSecretPatch(Schema):
    value: str | None = Field(None, min_length=1, max_length=cluster_secrets.MAX_VALUE)
    description: str | None = Field(None, max_length=500)
    rules: list[PipelinesPolicyRule] | None = Field(None, max_length=policies.MAX_RULES)


class ClusterSecretOut(Schema):
    key: str
    description: str
    rules: list[PipelinesPolicyRule]
    updated_by: str
    updated_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, view: cluster_secrets.SecretView) -> ClusterSecretOut:
        return cls(
            key=view.key,
            description=view.description,
            rules=[
                PipelinesPolicyRule(pipeline=r.pipeline, branches=r.branches) for r in view.rules
            ],
            updated_by=view.updated_by,
            updated_at=view.updated_at,
            created_at=view.created_at,
        )


def _cluster(request: HttpRequest, org: str, name: str, minimum: str) -> tuple[Principal, Cluster]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    organization = get_organization_for(principal, org)
    return principal, get_cluster_for(principal, organization, name, minimum)


def _rules(rules: list[PipelinesPolicyRule]) -> list[policies.Rule]:
    return [policies.Rule(r.pipeline, r.branches) for r in rules]


@router.get(PATH, response=list[ClusterSecretOut])
def list_secrets(request: HttpRequest, org: str, cluster: str) -> list[ClusterSecretOut]:
    principal, found = _cluster(request, org, cluster, Role.VIEWER)
    return [ClusterSecretOut.of(v) for v in cluster_secrets.secrets_of(principal, found)]


@router.post(PATH, response={201: ClusterSecretOut})
def create_secret(
    request: HttpRequest, org: str, cluster: str, body: ClusterSecretIn
) -> Status[ClusterSecretOut]:
    principal, found = _cluster(request, org, cluster, Role.ADMIN)
    view = cluster_secrets.create_secret(
        principal,
        found,
        key=body.key,
        value=body.value,
        description=body.description,
        rules=_rules(body.rules),
    )
    return Status(201, ClusterSecretOut.of(view))


@router.get(ONE, response=ClusterSecretOut)
def get_secret(request: HttpRequest, org: str, cluster: str, key: str) -> ClusterSecretOut:
    principal, found = _cluster(request, org, cluster, Role.VIEWER)
    row = cluster_secrets.get_secret_for(principal, found, key)
    return ClusterSecretOut.of(cluster_secrets.SecretView.of(row))


@router.patch(ONE, response=ClusterSecretOut)
def update_secret(
    request: HttpRequest, org: str, cluster: str, key: str, body: ClusterSecretPatch
) -> ClusterSecretOut:
    principal, found = _cluster(request, org, cluster, Role.ADMIN)
    view = cluster_secrets.update_secret(
        principal,
        found,
        key,
        value=body.value,
        description=body.description,
        rules=_rules(body.rules) if body.rules is not None else None,
    )
    return ClusterSecretOut.of(view)


@router.delete(ONE, response={204: None})
def delete_secret(request: HttpRequest, org: str, cluster: str, key: str) -> Status[None]:
    principal, found = _cluster(request, org, cluster, Role.ADMIN)
    cluster_secrets.delete_secret(principal, found, key)
    return Status(204, None)
