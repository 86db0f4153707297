"""Clusters, queues, agent tokens, agents and jobs over /api/v1/ (for people and API tokens).

Handlers parse and delegate: reads go through the scoped helpers of ``bastion.jobs.services``
(other organizations' objects are 404), writes through the named actions (viewers get 403).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.jobs import dispatch, services
from bastion.jobs.models import Agent, Cluster, Job

router = Router(tags=["jobs"])

MAX_PAGE = 200


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


# --- schemas ------------------------------------------------------------------------------------


class ClusterIn(Schema):
    name: str = Field(..., max_length=50)
    description: str = Field("", max_length=2000)


class ClusterOut(Schema):
    id: int
    organization: str
    name: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, cluster: Cluster) -> ClusterOut:
        return cls(
            id=cluster.pk,
            organization=cluster.organization.slug,
            name=cluster.name,
            description=cluster.description,
            created_at=cluster.created_at,
        )


class AgentTokenIn(Schema):
    description: str = Field("", max_length=200)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class AgentTokenOut(Schema):
    id: int
    cluster: str
    description: str
    prefix: str
    expires_at: datetime | None
    token: str = Field(..., description="The secret; shown this once and never again.")


class AgentOut(Schema):
    id: int
    cluster: str
    name: str
    hostname: str
    queue: str
    tags: dict[str, Any]
    state: str
    last_heartbeat_at: datetime
    current_job: int | None

    @classmethod
    def of(cls, agent: Agent) -> AgentOut:
        return cls(
            id=agent.pk,
            cluster=agent.cluster.name,
            name=agent.name,
            hostname=agent.hostname,
            queue=agent.queue,
            tags=agent.tags,
            state=agent.state,
            last_heartbeat_at=agent.last_heartbeat_at,
            current_job=agent.current_job_id,
        )


class JobIn(Schema):
    cluster: str = Field(services.DEFAULT_CLUSTER, max_length=50)
    kind: str = Field(..., max_length=20)
    payload: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field(services.DEFAULT_QUEUE, max_length=50)
    agent_tags: dict[str, str] = Field(default_factory=dict)
    priority: int = Field(0, ge=-1000, le=1000)
    timeout_s: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    expires_in_s: int | None = Field(None, ge=1, le=30 * 24 * 3600)
    label: str = Field("", max_length=300)


class JobOut(Schema):
    id: int
    organization: str
    cluster: str
    queue: str
    kind: str
    label: str
    state: str
    priority: int
    agent: int | None
    exit_status: int | None
    signal_reason: str
    cancel_requested: bool
    timeout_s: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log_bytes: int
    log_truncated: bool

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.pk,
            organization=job.organization.slug,
            cluster=job.cluster.name,
            queue=job.queue,
            kind=job.kind,
            label=job.label,
            state=job.state,
            priority=job.priority,
            agent=job.agent_id,
            exit_status=job.exit_status,
            signal_reason=job.signal_reason,
            cancel_requested=job.cancel_requested_at is not None,
            timeout_s=job.timeout_s,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            log_bytes=job.log_bytes,
            log_truncated=job.log_truncated,
        )


class JobFilter(Schema):
    state: str | None = None
    cluster: str | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)


class LogChunkOut(Schema):
    seq: int
    data: str


class JobLogOut(Schema):
    job: int
    state: str
    truncated: bool
    chunks: list[LogChunkOut]


# --- clusters and agent tokens ------------------------------------------------------------------


@router.get("/organizations/{org}/clusters", response=list[ClusterOut])
def list_clusters(request: HttpRequest, org: str) -> list[ClusterOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    return [ClusterOut.of(c) for c in services.clusters_for(principal, organization)]


@router.post("/organizations/{org}/clusters", response={201: ClusterOut})
def create_cluster(request: HttpRequest, org: str, body: ClusterIn) -> Status[ClusterOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    cluster = services.create_cluster(
        principal, organization, name=body.name, description=body.description
    )
    return Status(201, ClusterOut.of(cluster))


@router.post("/organizations/{org}/clusters/{name}/agent-tokens", response={201: AgentTokenOut})
def create_agent_token(
    request: HttpRequest, org: str, name: str, body: AgentTokenIn
) -> Status[AgentTokenOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    cluster = services.get_cluster_for(principal, organization, name)
    expires_at = (
        timezone.now() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    issued = services.create_agent_token(
        principal, cluster, description=body.description, expires_at=expires_at
    )
    token = issued.token
    return Status(
        201,
        AgentTokenOut(
            id=token.pk,
            cluster=cluster.name,
            description=token.description,
            prefix=token.prefix,
            expires_at=token.expires_at,
            token=issued.plaintext,
        ),
    )


# --- agents and jobs ----------------------------------------------------------------------------


@router.get("/organizations/{org}/agents", response=list[AgentOut])
def list_agents(request: HttpRequest, org: str) -> list[AgentOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    agents = services.agents_for(principal, organization).order_by("-last_heartbeat_at")
    return [AgentOut.of(a) for a in agents[:MAX_PAGE]]


@router.get("/organizations/{org}/jobs", response=list[JobOut])
def list_jobs(request: HttpRequest, org: str, filters: Query[JobFilter]) -> list[JobOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    jobs = services.jobs_for(principal, organization).select_related("organization")
    if filters.state:
        jobs = jobs.filter(state=filters.state)
    if filters.cluster:
        jobs = jobs.filter(cluster__name=filters.cluster)
    return [JobOut.of(j) for j in jobs.order_by("-created_at", "-pk")[: filters.limit]]


@router.post("/organizations/{org}/jobs", response={201: JobOut})
def create_job(request: HttpRequest, org: str, body: JobIn) -> Status[JobOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    cluster = services.get_cluster_for(principal, organization, body.cluster, Role.MEMBER)
    expires_at = (
        timezone.now() + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
    )
    job = dispatch.create_job(
        principal,
        organization,
        cluster,
        kind=body.kind,
        payload=body.payload,
        queue=body.queue,
        agent_tags=body.agent_tags,
        priority=body.priority,
        timeout_s=body.timeout_s,
        expires_at=expires_at,
        label=body.label,
    )
    return Status(201, JobOut.of(job))


@router.get("/jobs/{job_id}", response=JobOut)
def get_job(request: HttpRequest, job_id: int) -> JobOut:
    return JobOut.of(services.get_job_for(_principal(request), job_id))


@router.post("/jobs/{job_id}/cancel", response=JobOut)
def cancel_job(request: HttpRequest, job_id: int) -> JobOut:
    principal = _principal(request)
    job = services.get_job_for(principal, job_id, Role.MEMBER)
    dispatch.cancel_job(principal, job)
    return JobOut.of(services.get_job_for(principal, job_id))


@router.get("/jobs/{job_id}/log", response=JobLogOut)
def read_log(request: HttpRequest, job_id: int, after: int = -1) -> JobLogOut:
    job = services.get_job_for(_principal(request), job_id)
    chunks = [LogChunkOut(seq=seq, data=data) for seq, data in dispatch.read_log(job, after)]
    return JobLogOut(job=job.pk, state=job.state, truncated=job.log_truncated, chunks=chunks)
