"""List pages run a fixed number of queries, however many rows they show (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.models import Role
from bastion.jobs import services as jobs
from bastion.jobs.models import AgentState, JobState
from tests.factories import make_member, make_project
from tests.web.conftest import World, make_agent, make_cluster, make_job

pytestmark = pytest.mark.django_db

PAGES = [
    "",
    "agents/",
    "agents/live/",
    "audit/",
    "settings/",
    "settings/members/",
    "settings/tokens/",
    "settings/clusters/",
    "settings/clusters/main/",
]


def _grow(world: World, n: int) -> None:
    principal = Principal.of_user(world.owner)
    cluster = jobs.clusters_for(principal, world.org).get(name="main")
    for i in range(n):
        tag = f"{n}-{i}"
        job = make_job(cluster, JobState.RUNNING, f"job {tag}")
        agent = make_agent(cluster, f"agent-{tag}", AgentState.BUSY)
        agent.current_job = job
        agent.save()
        make_project(world.org, slug=f"p-{tag}")
        make_member(world.org, Role.MEMBER)
        services.create_api_token(principal, world.org, name=f"t-{tag}", role="member")
        services.invite_member(principal, world.org, email=f"i{tag}@example.test", role="viewer")
        jobs.create_queue(principal, cluster, key=f"q-{tag}")
        jobs.create_agent_token(principal, cluster, description=f"a-{tag}")
        make_cluster(world.org, f"c-{tag}")


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200, url
    return len(queries)


def test_list_pages_do_not_grow_queries_with_rows(world: World, owner_client: Client) -> None:
    make_cluster(world.org, "main")
    urls = [f"/o/{world.org.slug}/{suffix}" for suffix in PAGES]
    _grow(world, 1)
    few = {url: _count(owner_client, url) for url in urls}
    _grow(world, 4)
    many = {url: _count(owner_client, url) for url in urls}
    assert many == few
