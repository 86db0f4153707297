"""Fixtures for the web UI tests: an organization with an owner, and logged-in clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import Organization, Role, User
from bastion.jobs import services as jobs
from bastion.jobs.models import Agent, AgentState, Cluster, Job, JobKind, JobLogChunk, JobState
from tests.factories import make_member, make_org, make_user


@dataclass
class World:
    owner: User
    org: Organization


@pytest.fixture
def world(db: None) -> World:
    owner = make_user()
    return World(owner=owner, org=make_org(owner))


@pytest.fixture
def owner_client(world: World) -> Client:
    client = Client()
    client.force_login(world.owner)
    return client


def login_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def viewer_of(org: Organization) -> User:
    return make_member(org, Role.VIEWER)


def make_cluster(org: Organization, name: str = "default") -> Cluster:
    owner = org.memberships.get(role=Role.OWNER).user
    return jobs.create_cluster(Principal.of_user(owner), org, name=name)


def make_agent(cluster: Cluster, name: str = "agent-1", state: str = AgentState.IDLE) -> Agent:
    """Agents register through the agent API; for page tests a row is enough."""
    return Agent.objects.create(
        cluster=cluster,
        name=name,
        hostname="build-host",
        queue="default",
        tags={"queue": "default", "os": "linux"},
        session_token_hash=f"hash-{name}-{cluster.pk}",
        state=state,
    )


def make_job(
    cluster: Cluster, state: str = JobState.RUNNING, label: str = "echo hello", log: str = ""
) -> Job:
    job = Job.objects.create(
        organization=cluster.organization,
        cluster=cluster,
        kind=JobKind.COMMAND,
        label=label,
        state=state,
        started_at=timezone.now(),
    )
    if log:
        JobLogChunk.objects.create(job=job, seq=0, data=log)
    return job


@pytest.fixture(autouse=True)
def fast_password_hasher(settings: Any) -> None:
    """Argon2 stays the production hasher (tested elsewhere); these tests sign in a lot."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
