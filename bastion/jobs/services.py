"""Actions on clusters, queues, agent tokens and jobs. Each write is one transaction with its audit row.

The agent-facing half (register, poll, accept, log, finish) and the sweeps that mark agents lost
and jobs expired or timed out live in ``bastion.jobs.dispatch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Organization, Role, slug_validator
from bastion.core.tokens import new_token
from bastion.jobs.models import Agent, AgentToken, Cluster, Job, Queue

DEFAULT_CLUSTER = "default"
DEFAULT_QUEUE = "default"


# --- scoped reads ----------------------------------------------------------------------------


def clusters_for(
    principal: Principal, organization: Organization | None = None
) -> QuerySet[Cluster]:
    clusters = Cluster.objects.filter(organization__in=principal.organizations())
    if organization is not None:
        clusters = clusters.filter(organization=organization)
    return clusters.select_related("organization").order_by("organization__slug", "name")


def get_cluster_for(
    principal: Principal, organization: Organization, name: str, minimum: str = Role.VIEWER
) -> Cluster:
    cluster = clusters_for(principal, organization).filter(name=name).first()
    if cluster is None:
        raise Http404("No such cluster.")
    require_role(principal, organization, minimum)
    return cluster


def agents_for(principal: Principal, organization: Organization | None = None) -> QuerySet[Agent]:
    return Agent.objects.filter(cluster__in=clusters_for(principal, organization)).select_related(
        "cluster", "current_job"
    )


def jobs_for(principal: Principal, organization: Organization | None = None) -> QuerySet[Job]:
    jobs = Job.objects.filter(organization__in=principal.organizations())
    if organization is not None:
        jobs = jobs.filter(organization=organization)
    return jobs.select_related("cluster", "agent")


def get_job_for(principal: Principal, job_id: int, minimum: str = Role.VIEWER) -> Job:
    job = jobs_for(principal).filter(pk=job_id).first()
    if job is None:
        raise Http404("No such job.")
    require_role(principal, job.organization, minimum)
    return job


def agent_tokens_for(principal: Principal, cluster: Cluster) -> QuerySet[AgentToken]:
    require_role(principal, cluster.organization, Role.ADMIN)
    return AgentToken.objects.filter(cluster=cluster).order_by("-created_at")


# --- clusters, queues and agent tokens ------------------------------------------------------


def create_cluster(
    principal: Principal, organization: Organization, *, name: str, description: str = ""
) -> Cluster:
    require_role(principal, organization, Role.ADMIN)
    try:
        slug_validator(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    if Cluster.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": ["A cluster with that name already exists."]})
    with transaction.atomic():
        cluster = Cluster.objects.create(
            organization=organization, name=name, description=description
        )
        Queue.objects.create(cluster=cluster, key=DEFAULT_QUEUE)
        audit.record(
            principal.actor,
            "cluster.create",
            organization=organization,
            target=cluster,
            changes={"name": name},
        )
    return cluster


def create_queue(
    principal: Principal, cluster: Cluster, *, key: str, description: str = ""
) -> Queue:
    require_role(principal, cluster.organization, Role.ADMIN)
    try:
        slug_validator(key)
    except ValidationError as exc:
        raise ValidationError({"key": exc.messages}) from exc
    if Queue.objects.filter(cluster=cluster, key=key).exists():
        raise ValidationError({"key": ["A queue with that key already exists in this cluster."]})
    with transaction.atomic():
        queue = Queue.objects.create(cluster=cluster, key=key, description=description)
        audit.record(
            principal.actor,
            "queue.create",
            organization=cluster.organization,
            target=queue,
            changes={"cluster": cluster.name, "key": key},
        )
    return queue


@dataclass(frozen=True)
class IssuedAgentToken:
    token: AgentToken
    plaintext: str


def create_agent_token(
    principal: Principal,
    cluster: Cluster,
    *,
    description: str = "",
    expires_at: datetime | None = None,
) -> IssuedAgentToken:
    require_role(principal, cluster.organization, Role.ADMIN)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    secret = new_token("agt")
    with transaction.atomic():
        token = AgentToken.objects.create(
            cluster=cluster,
            description=description[:200],
            prefix=secret.prefix,
            token_hash=secret.digest,
            created_by=principal.user,
            expires_at=expires_at,
        )
        audit.record(
            principal.actor,
            "agent_token.create",
            organization=cluster.organization,
            target=token,
            changes={"cluster": cluster.name, "description": description, "expires_at": expires_at},
        )
    return IssuedAgentToken(token=token, plaintext=secret.plaintext)


def revoke_agent_token(principal: Principal, token: AgentToken) -> None:
    require_role(principal, token.cluster.organization, Role.ADMIN)
    if token.revoked_at is not None:
        return
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            principal.actor,
            "agent_token.revoke",
            organization=token.cluster.organization,
            target=token,
        )
