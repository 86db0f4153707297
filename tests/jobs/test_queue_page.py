"""The queue page: waiting jobs with their wait, agents idle/busy, p50/p95 wait over the hour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bastion.jobs import dispatch
from bastion.jobs.models import Job
from bastion.jobs.queues import queue_stats
from bastion.jobs.services import agents_for, jobs_for
from tests.jobs.helpers import World
from tests.web.conftest import login_client, viewer_of


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_queue_figures_and_page(db: None) -> None:
    world = World(cluster_name="ci")
    busy, _ = world.agent(name="busy")
    world.agent(name="idle", tags={"queue": "default"})
    now = timezone.now()
    for minutes_ago, wait_s in ((50, 2.0), (30, 4.0), (10, 6.0)):
        job = world.job()
        created = now - timedelta(minutes=minutes_ago)
        Job.objects.filter(pk=job.pk).update(created_at=created)
        assert dispatch.poll(busy) is not None
        Job.objects.filter(pk=job.pk).update(assigned_at=created + timedelta(seconds=wait_s))
        dispatch.cancel_job(world.principal, job)  # frees the agent for the next one
    old = world.job(label="old one")
    Job.objects.filter(pk=old.pk).update(created_at=now - timedelta(minutes=3))
    world.job(queue="gpu", label="no agent for me")
    assert dispatch.poll(busy) is not None  # busy again, with the old job
    world.job(label="waiting")
    stats = {(s.cluster, s.queue): s for s in queue_stats(
        jobs_for(world.principal, world.org), agents_for(world.principal, world.org), now
    )}  # fmt: skip
    default = stats[("ci", "default")]
    assert (default.idle, default.busy, default.waiting_count) == (1, 1, 1)
    assert default.p50 is not None and default.p95 is not None
    assert sorted(default.samples)[:3] == [2.0, 4.0, 6.0]
    assert stats[("ci", "gpu")].waiting_count == 1 and stats[("ci", "gpu")].idle == 0
    html = login_client(viewer_of(world.org)).get(f"/o/{world.org.slug}/queues/")
    assert html.status_code == 200
    text = html.content.decode()
    assert "no agent for me" in text and "no agent" in text and "Wait p95" in text
    other = World(cluster_name="secret-cluster")
    page = login_client(other.owner).get(f"/o/{other.org.slug}/queues/").content.decode()
    assert "No queue has agents or jobs yet" in page and "no agent for me" not in page
