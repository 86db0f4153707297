"""Agents and jobs pages: live partials, the job log, and cancelling a job."""

from __future__ import annotations

import pytest
from django.test import Client

from bastion.core.models import AuditEvent, Role
from bastion.jobs.models import AgentState, Job, JobState
from tests.factories import make_member
from tests.web.conftest import World, login_client, make_agent, make_cluster, make_job

pytestmark = pytest.mark.django_db


def test_agents_page_shows_state_heartbeat_and_current_job(
    world: World, owner_client: Client
) -> None:
    cluster = make_cluster(world.org)
    job = make_job(cluster, JobState.RUNNING, "deploy staging")
    agent = make_agent(cluster, "builder-7", AgentState.BUSY)
    agent.current_job = job
    agent.queue = "deploy"
    agent.tags = {"os": "linux", "gpu": "<a100>"}  # as registered: the queue has its column
    agent.save()
    lost = make_agent(cluster, "old-box", AgentState.LOST)
    lost.tags = {}
    lost.save()
    response = owner_client.get(f"/o/{world.org.slug}/agents/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "builder-7" in html and "old-box" in html
    assert "badge-blue" in html and "badge-red" in html
    assert " s ago" in html
    assert f"/o/{world.org.slug}/jobs/{job.pk}/" in html
    assert 'hx-trigger="every 3s"' in html
    # Each agent's queue and tags (key=value chips, escaped; a dash when it has none).
    row = html[html.index("builder-7") : html.index("old-box")]
    assert '<td class="mono-sm">deploy</td>' in row
    assert '<span class="chip mono-sm">gpu=&lt;a100&gt;</span>' in row
    assert '<span class="chip mono-sm">os=linux</span>' in row and "<a100>" not in html
    lost_row = html[html.index("old-box") :].split("</tr>")[0]
    assert '<span class="muted">—</span>' in lost_row and "chip" not in lost_row
    partial = owner_client.get(f"/o/{world.org.slug}/agents/live/")
    assert partial.status_code == 200
    assert b"<html" not in partial.content and b"builder-7" in partial.content


def test_agents_page_empty_state_says_what_to_do(world: World, owner_client: Client) -> None:
    html = owner_client.get(f"/o/{world.org.slug}/agents/").content.decode()
    assert "No agents registered" in html and "bastion agent start" in html


def test_job_log_refreshes_while_running_and_stops_when_finished(
    world: World, owner_client: Client
) -> None:
    cluster = make_cluster(world.org)
    job = make_job(cluster, JobState.RUNNING, log="step 1\n<b>not html</b>\n")
    page = owner_client.get(f"/o/{world.org.slug}/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "step 1" in html and "&lt;b&gt;not html&lt;/b&gt;" in html
    assert 'hx-trigger="every 2s"' in html
    job.state = JobState.PASSED
    job.save()
    partial = owner_client.get(f"/o/{world.org.slug}/jobs/{job.pk}/log/").content.decode()
    assert "hx-trigger" not in partial and "Passed" in partial


def test_job_log_shows_colours_and_collapsible_sections(world: World, owner_client: Client) -> None:
    log = "--- install\ncollected\n+++ \x1b[1mtests\x1b[0m\n\x1b[31m1 failed\x1b[0m\n"
    job = make_job(make_cluster(world.org), JobState.FAILED, log=log)
    html = owner_client.get(f"/o/{world.org.slug}/jobs/{job.pk}/").content.decode()
    assert '<details class="log-section"><summary>install</summary>' in html
    assert '<details class="log-section" open><summary><span class="ansi-bold">tests</span>' in html
    assert '<span class="ansi-fg-31">1 failed</span>' in html and "\x1b" not in html


def test_cancel_a_running_job_asks_its_agent(world: World, owner_client: Client) -> None:
    job = make_job(make_cluster(world.org), JobState.RUNNING)
    response = owner_client.post(f"/o/{world.org.slug}/jobs/{job.pk}/cancel/", follow=True)
    assert response.status_code == 200
    assert f"Cancellation of job {job.pk} requested." in [
        str(m) for m in response.context["messages"]
    ]
    job.refresh_from_db()
    assert job.cancel_requested_at is not None
    assert AuditEvent.objects.filter(action="job.cancel", object_id=str(job.pk)).exists()
    assert b"Cancel requested" in response.content
    assert f"/jobs/{job.pk}/cancel/".encode() not in response.content


def test_cancel_a_scheduled_job_ends_it_and_a_finished_one_changes_nothing(
    world: World,
) -> None:
    member = make_member(world.org, Role.MEMBER)
    client = login_client(member)
    cluster = make_cluster(world.org)
    scheduled = make_job(cluster, JobState.SCHEDULED)
    client.post(f"/o/{world.org.slug}/jobs/{scheduled.pk}/cancel/")
    scheduled.refresh_from_db()
    assert scheduled.state == JobState.CANCELED
    done = make_job(cluster, JobState.PASSED)
    rows = AuditEvent.objects.count()
    response = client.post(f"/o/{world.org.slug}/jobs/{done.pk}/cancel/", follow=True)
    assert response.status_code == 200
    assert Job.objects.get(pk=done.pk).state == JobState.PASSED
    assert AuditEvent.objects.count() == rows


def test_unknown_job_is_404(world: World, owner_client: Client) -> None:
    assert owner_client.get(f"/o/{world.org.slug}/jobs/999999/").status_code == 404
