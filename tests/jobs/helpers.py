"""Test data for jobs and agents, built through the real actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bastion.core.access import Principal
from bastion.core.models import Organization, User
from bastion.jobs import dispatch, services
from bastion.jobs.models import Agent, Cluster, Job
from tests.factories import make_org, make_user


class World:
    """One organization, its owner, a cluster and an agent token."""

    def __init__(self, cluster_name: str = "main", org: Organization | None = None) -> None:
        if org is None:
            self.owner: User = make_user()
            self.org = make_org(self.owner)
        else:
            self.org = org
            self.owner = org.memberships.get(role="owner").user
        self.principal = Principal.of_user(self.owner)
        self.cluster: Cluster = services.create_cluster(self.principal, self.org, name=cluster_name)
        self.token = services.create_agent_token(self.principal, self.cluster).plaintext

    def agent(self, tags: dict[str, str] | None = None, name: str = "a") -> tuple[Agent, str]:
        reg = dispatch.register_agent(self.token, name=name, tags=tags or {"queue": "default"})
        return reg.agent, reg.session_token

    def job(
        self,
        command: str = "echo hi",
        *,
        expires_at: datetime | None = None,
        **kwargs: Any,
    ) -> Job:
        payload = kwargs.pop("payload", {"command": command})
        return dispatch.create_job(
            self.principal,
            self.org,
            self.cluster,
            kind=kwargs.pop("kind", "command"),
            payload=payload,
            expires_at=expires_at,
            **kwargs,
        )

    def running(self, agent: Agent) -> tuple[Job, str]:
        """Poll, accept and start the next job for the agent; returns it with its job token."""
        job = dispatch.poll(agent)
        assert job is not None
        accepted = dispatch.accept(agent, job.pk)
        dispatch.start(job)
        job.refresh_from_db()
        return job, accepted.token
