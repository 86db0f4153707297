"""Create many jobs at once: what a pipeline's fan-out does (hundreds of steps start together).

``create_job`` costs an insert and an audit-chain append per job; here the jobs are validated one
by one (a bad one is reported with its index, nothing is created), inserted with one statement,
and audited with one row that names every job created, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Organization, Role
from bastion.jobs import wakeup
from bastion.jobs.dispatch import DEFAULT_QUEUE, _no_nul, _validate_job
from bastion.jobs.models import Cluster, Job


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    queue: str = DEFAULT_QUEUE
    agent_tags: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    timeout_s: int | None = None
    label: str = ""
    origin: str = ""


def validate(spec: NewJob) -> None:
    """Raise ValidationError when ``create_jobs`` would refuse this job."""
    _validate_job(spec.kind, spec.payload, spec.queue, spec.agent_tags, spec.timeout_s)


def create_jobs(
    principal: Principal, organization: Organization, cluster: Cluster, specs: list[NewJob]
) -> list[Job]:
    """Schedule ``specs`` on the cluster, in order; one audit row for the batch."""
    require_role(principal, organization, Role.MEMBER)
    if cluster.organization_id != organization.pk:
        raise Http404("No such cluster.")
    for spec in specs:
        validate(spec)
    if not specs:
        return []
    now = timezone.now()
    expires_at = now + timedelta(seconds=int(settings.CONFIG.job_expiry_s))
    rows = [
        Job(
            organization=organization,
            cluster=cluster,
            queue=spec.queue,
            agent_tags=spec.agent_tags,
            kind=spec.kind,
            label=_no_nul(spec.label)[:300],
            payload=spec.payload,
            origin=_no_nul(spec.origin)[:100],
            priority=spec.priority,
            timeout_s=spec.timeout_s,
            created_by=principal.actor.label[:200],
            created_at=now,
            expires_at=expires_at,
        )
        for spec in specs
    ]
    with transaction.atomic():
        jobs = Job.objects.bulk_create(rows)
        audit.record(
            principal.actor,
            "job.create",
            organization=organization,
            object_type="jobs.job",
            object_id=f"{jobs[0].pk}-{jobs[-1].pk}" if len(jobs) > 1 else str(jobs[0].pk),
            object_repr=f"{len(jobs)} jobs",
            changes={
                "cluster": cluster.name,
                "jobs": [[job.pk, job.queue, job.kind, job.label] for job in jobs],
            },
        )
        transaction.on_commit(wakeup.ring)
    return jobs
