"""Dispatch logic, called directly: registration, assignment, the job lifecycle and the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.core.tokens import hash_token
from bastion.jobs import dispatch, services
from bastion.jobs.errors import InvalidAgentToken, JobConflict, JobNotFound
from bastion.jobs.logs import TRUNCATION_NOTICE
from bastion.jobs.models import Agent, AgentState, Job, JobLogChunk, JobState, Queue
from tests.factories import make_member, make_org, make_user
from tests.jobs.helpers import World

pytestmark = pytest.mark.django_db


# --- registration -------------------------------------------------------------------------------


def test_register_gives_a_hashed_session_token_and_creates_the_queue() -> None:
    world = World()
    reg = dispatch.register_agent(
        world.token, name="builder", tags={"queue": "deploy", "os": "linux"}, pid=42
    )
    agent = reg.agent
    assert reg.session_token.startswith("bstses_")
    assert agent.session_token_hash == hash_token(reg.session_token)
    assert reg.session_token not in str(Agent.objects.filter(pk=agent.pk).values().get())
    assert (agent.cluster, agent.queue, agent.tags) == (world.cluster, "deploy", {"os": "linux"})
    assert Queue.objects.filter(cluster=world.cluster, key="deploy").exists()
    assert dispatch.agent_for_session(reg.session_token) == agent
    assert AuditEvent.objects.filter(action="agent.register", object_id=str(agent.pk)).exists()
    assert reg.intervals.job_status_s == 1.0


def test_expired_revoked_and_unknown_registration_tokens_are_refused() -> None:
    world = World()
    issued = services.create_agent_token(
        world.principal, world.cluster, expires_at=timezone.now() + timedelta(days=1)
    )
    services.AgentToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked = services.create_agent_token(world.principal, world.cluster)
    services.revoke_agent_token(world.principal, revoked.token)
    for token in (issued.plaintext, revoked.plaintext, "bstagt_nonsense", ""):
        with pytest.raises(InvalidAgentToken):
            dispatch.register_agent(token, name="x", tags={})
    assert not Agent.objects.exists()


def test_bad_queue_tag_is_refused() -> None:
    world = World()
    with pytest.raises(ValidationError):
        dispatch.register_agent(world.token, name="x", tags={"queue": "Not A Slug!"})


# --- creating jobs ------------------------------------------------------------------------------


def test_create_job_validates_audits_and_needs_member_role() -> None:
    world = World()
    job = world.job("echo hi", timeout_s=30, label="hello")
    assert job.state == JobState.SCHEDULED and job.expires_at is not None
    assert AuditEvent.objects.filter(action="job.create", object_id=str(job.pk)).exists()
    with pytest.raises(ValidationError) as bad:
        world.job(kind="nope", payload={})
    assert "kind" in bad.value.message_dict
    with pytest.raises(ValidationError):
        world.job(payload={"command": ""})
    with pytest.raises(ValidationError):
        world.job(payload={"command": "true", "env": {"A": 1}})
    with pytest.raises(ValidationError):
        world.job(queue="UPPER")
    viewer = make_member(world.org, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        dispatch.create_job(
            Principal.of_user(viewer), world.org, world.cluster, kind="command",
            payload={"command": "true"},
        )  # fmt: skip
    other = World(cluster_name="theirs")
    with pytest.raises(Http404):  # another organization's cluster
        dispatch.create_job(
            world.principal, world.org, other.cluster, kind="command", payload={"command": "true"}
        )


# --- polling and assignment ---------------------------------------------------------------------


def test_poll_assigns_one_job_by_priority_then_age_and_is_idempotent() -> None:
    world = World()
    agent, _ = world.agent()
    older = world.job("echo older")
    newer_high = world.job("echo urgent", priority=5)
    assert dispatch.poll(agent) == newer_high
    agent.refresh_from_db()
    assert agent.state == AgentState.BUSY and agent.current_job_id == newer_high.pk
    # Polling again while a job is assigned returns that same job, never a second one.
    assert dispatch.poll(agent) == newer_high
    assert Job.objects.get(pk=older.pk).state == JobState.SCHEDULED
    dispatch.accept(agent, newer_high.pk)
    assert dispatch.poll(agent) is None  # busy with an accepted job


def test_poll_matches_queue_and_every_agent_tag() -> None:
    world = World()
    linux, _ = world.agent({"queue": "default", "os": "linux"}, name="linux")
    mac, _ = world.agent({"queue": "default", "os": "mac"}, name="mac")
    deploy, _ = world.agent({"queue": "deploy", "os": "linux"}, name="deploy")
    job = world.job(agent_tags={"os": "linux", "arch": "*"})
    assert dispatch.poll(linux) is None  # no arch tag at all
    Agent.objects.filter(pk=linux.pk).update(tags={"os": "linux", "arch": "arm64"})
    linux.refresh_from_db()
    assert dispatch.poll(mac) is None
    assert dispatch.poll(deploy) is None
    assert dispatch.poll(linux) == job


def test_agent_of_one_cluster_never_gets_another_clusters_or_orgs_jobs() -> None:
    world = World("a")
    sibling = World("b", org=world.org)
    stranger = World("c")
    agent_a, _ = world.agent()
    sibling.job("echo b")
    stranger.job("echo c")
    assert dispatch.poll(agent_a) is None
    assert dispatch.long_poll(agent_a, 0.3) is None
    mine = world.job("echo a")
    assert dispatch.poll(agent_a) == mine
    assert Job.objects.filter(state=JobState.SCHEDULED).count() == 2


def test_paused_queue_and_expired_jobs_are_not_dispatched() -> None:
    world = World()
    agent, _ = world.agent()
    world.job()
    Queue.objects.filter(cluster=world.cluster, key="default").update(paused=True)
    assert dispatch.poll(agent) is None
    Queue.objects.filter(cluster=world.cluster).update(paused=False)
    Job.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert dispatch.poll(agent) is None


def test_losing_the_assignment_race_moves_on_to_the_next_candidate() -> None:
    world = World()
    first, _ = world.agent(name="first")
    second, _ = world.agent(name="second")
    job1, job2 = world.job("echo 1"), world.job("echo 2")
    now = timezone.now()
    assert dispatch._candidates(second, now) == [job1.pk, job2.pk]
    assert dispatch._try_assign(first, job1.pk, now)
    # The second agent read job1 as a candidate, but the conditional update decides: it lost.
    assert not dispatch._try_assign(second, job1.pk, now)
    assert dispatch.poll(second) == job2
    assert Job.objects.get(pk=job1.pk).agent_id == first.pk


# --- accept, tokens, status, finish ------------------------------------------------------------


def test_accept_only_by_the_assigned_agent_and_job_token_acts_on_its_job_only() -> None:
    world = World()
    agent, _ = world.agent(name="mine")
    other, _ = world.agent(name="other")
    job = world.job()
    second = world.job("echo 2")
    assert dispatch.poll(agent) == job
    with pytest.raises(JobNotFound):
        dispatch.accept(other, job.pk)
    with pytest.raises(JobNotFound):
        dispatch.accept(agent, second.pk)  # scheduled, not assigned to it
    accepted = dispatch.accept(agent, job.pk)
    assert accepted.spec.payload == {"command": "echo hi"}
    assert Job.objects.get(pk=job.pk).token_hash == hash_token(accepted.token)
    assert dispatch.job_for_token(accepted.token, job.pk) == job
    with pytest.raises(JobNotFound):
        dispatch.job_for_token(accepted.token, second.pk)
    with pytest.raises(InvalidAgentToken):
        dispatch.job_for_token("bstjob_forged", job.pk)
    with pytest.raises(InvalidAgentToken):
        dispatch.job_for_token(world.token, job.pk)  # a registration token is no job token


def test_lifecycle_passed_and_failed_with_idempotent_finish() -> None:
    world = World()
    agent, _ = world.agent()
    world.job("true")
    job, _ = world.running(agent)
    assert job.state == JobState.RUNNING and job.started_at is not None
    assert dispatch.start(job).state == JobState.RUNNING  # a retried start
    done = dispatch.finish(job, 0)
    assert done.state == JobState.PASSED and done.exit_status == 0
    assert dispatch.finish(job, 0).state == JobState.PASSED  # a retried finish
    with pytest.raises(JobConflict):
        dispatch.finish(job, 3)
    agent.refresh_from_db()
    assert agent.state == AgentState.IDLE and agent.current_job_id is None
    world.job("false")
    failing, _ = world.running(agent)
    assert dispatch.finish(failing, 1).state == JobState.FAILED


def test_cancel_scheduled_at_once_running_by_request() -> None:
    world = World()
    agent, _ = world.agent()
    queued = world.job("sleep 1")
    dispatch.cancel_job(world.principal, queued)
    queued.refresh_from_db()
    assert queued.state == JobState.CANCELED and queued.finished_at is not None
    assert AuditEvent.objects.filter(action="job.cancel", object_id=str(queued.pk)).exists()
    world.job("sleep 100")
    job, _ = world.running(agent)
    dispatch.cancel_job(world.principal, job)
    status = dispatch.job_status(job)
    assert status.state == JobState.RUNNING and status.cancel_requested
    assert dispatch.finish(job, 143, "cancel").state == JobState.CANCELED
    with pytest.raises(ValidationError):
        dispatch.cancel_job(world.principal, job)
    viewer = make_member(world.org, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        dispatch.cancel_job(Principal.of_user(viewer), world.job())


def test_an_assigned_job_canceled_before_accept_cannot_be_accepted() -> None:
    world = World()
    agent, _ = world.agent()
    job = world.job()
    assert dispatch.poll(agent) == job
    dispatch.cancel_job(world.principal, job)
    with pytest.raises(JobConflict):
        dispatch.accept(agent, job.pk)
    agent.refresh_from_db()
    assert agent.state == AgentState.IDLE


# --- logs -----------------------------------------------------------------------------------------


def test_log_chunks_are_idempotent_ordered_and_redacted() -> None:
    world = World()
    agent, _ = world.agent()
    world.job(
        payload={
            "command": "env",
            "env": {"DB_PASSWORD": "hunter2-very-secret", "PLAIN": "x"},
            "secret_env": ["DB_PASSWORD"],
        }
    )
    job, _ = world.running(agent)
    assert dispatch.append_log(job, 1, "second hunter2-very-secret\n").stored
    assert dispatch.append_log(job, 0, "first\x00\n").stored
    retry = dispatch.append_log(job, 1, "a different body for the same seq\n")
    assert not retry.stored
    chunks = dispatch.read_log(job)
    assert chunks == [(0, "first\n"), (1, "second [REDACTED]\n")]
    assert dispatch.read_log(job, after_seq=0) == [(1, "second [REDACTED]\n")]
    job.refresh_from_db()
    assert job.log_bytes == len(b"first\n") + len(b"second [REDACTED]\n")
    dispatch.finish(job, 0)
    with pytest.raises(JobConflict):
        dispatch.append_log(job, 2, "after the end")


def test_log_is_capped_and_marked_truncated(settings: object) -> None:
    settings.BASTION_JOB_LOG_MAX_BYTES = 10  # type: ignore[attr-defined]
    world = World()
    agent, _ = world.agent()
    world.job()
    job, _ = world.running(agent)
    dispatch.append_log(job, 0, "12345678")
    result = dispatch.append_log(job, 1, "abcdefgh")
    assert result.truncated
    assert not dispatch.append_log(job, 2, "more").stored
    assert "".join(d for _, d in dispatch.read_log(job)) == "12345678ab" + TRUNCATION_NOTICE
    assert JobLogChunk.objects.filter(job=job).count() == 2
    job.refresh_from_db()
    assert job.log_truncated


# --- disconnect and the sweep --------------------------------------------------------------------


def test_disconnect_requeues_unaccepted_work_and_ends_the_session() -> None:
    world = World()
    agent, session = world.agent()
    job = world.job()
    assert dispatch.poll(agent) == job
    dispatch.disconnect(agent)
    job.refresh_from_db()
    assert job.state == JobState.SCHEDULED and job.agent_id is None
    assert AuditEvent.objects.filter(action="agent.disconnect", object_id=str(agent.pk)).exists()
    with pytest.raises(InvalidAgentToken):
        dispatch.agent_for_session(session)


def test_sweep_marks_silent_agents_lost_and_their_running_jobs_lost() -> None:
    world = World()
    silent, session = world.agent(name="silent")
    alive, _ = world.agent(name="alive")
    world.job("sleep 100")
    running, _ = world.running(silent)
    waiting = world.job("echo next")
    assert dispatch.poll(alive) == waiting
    later = timezone.now() + timedelta(seconds=1000)
    dispatch.heartbeat(alive)
    Agent.objects.filter(pk=alive.pk).update(last_heartbeat_at=later)
    report = dispatch.sweep(now=later)
    assert report.agents_lost == 1 and report.jobs_lost == 1
    running.refresh_from_db()
    assert (running.state, running.exit_status) == (JobState.LOST, -1)
    assert Agent.objects.get(pk=silent.pk).state == AgentState.LOST
    assert Job.objects.get(pk=waiting.pk).state == JobState.ASSIGNED  # its agent is alive
    assert AuditEvent.objects.filter(action="agent.lost", object_id=str(silent.pk)).exists()
    with pytest.raises(InvalidAgentToken):
        dispatch.agent_for_session(session)
    with pytest.raises(JobConflict):
        dispatch.finish(running, 0)  # the lost agent comes back too late
    assert dispatch.sweep(now=later) == dispatch.SweepReport()


def test_sweep_requeues_jobs_a_lost_agent_had_not_accepted() -> None:
    world = World()
    agent, _ = world.agent()
    job = world.job()
    assert dispatch.poll(agent) == job
    report = dispatch.sweep(now=timezone.now() + timedelta(days=1, seconds=1))
    job.refresh_from_db()
    assert report.jobs_requeued == 1
    # Requeued, and (one day later) past its default expiry, so the same sweep expires it.
    assert job.state == JobState.EXPIRED and job.agent_id is None


def test_sweep_expires_unclaimed_jobs_and_times_out_long_ones() -> None:
    world = World()
    agent, _ = world.agent()
    world.job("sleep 100", timeout_s=5)
    running, _ = world.running(agent)
    soon = timezone.now() + timedelta(seconds=60)
    stale = world.job("echo too late", expires_at=timezone.now() + timedelta(seconds=30))
    dispatch.heartbeat(agent)
    report = dispatch.sweep(now=soon)
    assert (report.jobs_expired, report.jobs_timed_out, report.agents_lost) == (1, 1, 0)
    assert Job.objects.get(pk=stale.pk).state == JobState.EXPIRED
    status = dispatch.job_status(running)
    assert status.cancel_requested and status.cancel_reason == JobState.TIMED_OUT
    assert dispatch.finish(running, 143, "cancel").state == JobState.TIMED_OUT
    assert dispatch.sweep(now=soon).jobs_timed_out == 0


def test_system_principal_acts_as_owner_of_one_organization_only() -> None:
    world = World()
    other = make_org(make_user())
    principal = Principal.system("cli", organization=world.org)
    assert services.create_cluster(principal, world.org, name="made-by-cli").name == "made-by-cli"
    with pytest.raises(Http404):
        services.create_cluster(principal, other, name="nope")


def test_nul_characters_are_refused_or_dropped() -> None:
    world = World()
    with pytest.raises(ValidationError):
        world.job(payload={"command": "echo \x00"})
    job = world.job(payload={"command": "printf 'a\\u0000b'"}, label="l\x00abel")
    assert job.label == "label"
    agent = dispatch.register_agent(world.token, name="n\x00ame", tags={"o\x00s": "x"}).agent
    assert (agent.name, agent.tags) == ("name", {"os": "x"})
