"""Dispatch: the server half of the agent protocol, as plain typed functions.

Agents register with a cluster's registration token and receive a per-agent session token; they
poll for work, accept an assigned job (receiving a per-job token that can act on that job only),
start it, stream its log, heartbeat and finish it. ``sweep()`` (run every second by the scheduler)
marks silent agents lost, expires jobs nobody picked up and times out jobs that ran too long.

Assignment is race-free on SQLite and PostgreSQL alike: candidates are read without locks, then a
conditional ``UPDATE ... WHERE state = 'scheduled'`` decides the winner by its row count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.context import Actor, client_ip
from bastion.core.models import Organization, Role, slug_validator
from bastion.core.tokens import hash_token, new_token
from bastion.jobs import gates, wakeup
from bastion.jobs.artifacts import upload_artifact
from bastion.jobs.errors import InvalidAgentToken, JobConflict, JobNotFound
from bastion.jobs.logs import LogChunk, append_log, job_secrets, payload_env, read_log
from bastion.jobs.models import (
    ACTIVE_STATES,
    Agent,
    AgentState,
    AgentToken,
    Cluster,
    Job,
    JobKind,
    JobState,
    Queue,
)
from bastion.jobs.sweep import LIVE_AGENT_STATES, SweepReport, abandon_jobs, sweep

__all__ = [
    "AcceptedJob",
    "Intervals",
    "JobSpec",
    "JobStatus",
    "LogChunk",
    "Registration",
    "SweepReport",
    "accept",
    "agent_for_session",
    "append_log",
    "cancel_job",
    "create_job",
    "disconnect",
    "finish",
    "heartbeat",
    "job_for_token",
    "job_secrets",
    "job_status",
    "long_poll",
    "poll",
    "read_log",
    "register_agent",
    "start",
    "sweep",
    "upload_artifact",
]

DEFAULT_QUEUE = "default"
JOB_STATUS_INTERVAL_S = 1.0
# How often a waiting long poll looks for new work; each look is one indexed query.
LONG_POLL_CHECK_S = 0.1
# How many scheduled jobs one poll considers before giving up (tags may rule some out).
CANDIDATES = 50
# A job token still answers this long after its job finished, so a retried finish is idempotent.
JOB_TOKEN_GRACE = timedelta(minutes=5)
POLL_HEARTBEAT_PRECISION = timedelta(seconds=1)


# --- what crosses to the agent ----------------------------------------------------------------


@dataclass(frozen=True)
class Intervals:
    """Server-controlled timings, sent with every register and poll response."""

    poll_s: float
    long_poll_s: float
    heartbeat_s: float
    job_status_s: float

    @classmethod
    def current(cls) -> Intervals:
        config = settings.CONFIG
        return cls(
            poll_s=float(config.agent_poll_interval_s),
            long_poll_s=float(config.agent_long_poll_s),
            heartbeat_s=float(config.agent_heartbeat_interval_s),
            job_status_s=JOB_STATUS_INTERVAL_S,
        )


@dataclass(frozen=True)
class Registration:
    agent: Agent
    session_token: str
    intervals: Intervals


@dataclass(frozen=True)
class JobSpec:
    """What an agent needs to run a job."""

    id: int
    kind: str
    label: str
    payload: dict[str, Any]
    timeout_s: int | None

    @classmethod
    def of(cls, job: Job) -> JobSpec:
        payload = dict(job.payload)
        if payload.get("env_encrypted"):
            # The agent gets the encrypted variables in clear, in env (and only the agent).
            payload["env"] = payload_env(payload)
            del payload["env_encrypted"]
        return cls(
            id=job.pk,
            kind=job.kind,
            label=job.label,
            payload=payload,
            timeout_s=job.timeout_s,
        )


@dataclass(frozen=True)
class AcceptedJob:
    spec: JobSpec
    token: str


@dataclass(frozen=True)
class JobStatus:
    state: str
    cancel_requested: bool
    cancel_reason: str


def _agent_actor(agent: Agent) -> Actor:
    return Actor(label=f"agent:{agent.name}#{agent.pk}", ip=client_ip())


# --- jobs, created by people and by other modules ---------------------------------------------


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def _validate_job(kind: str, payload: Any, queue: str, agent_tags: Any, timeout_s: Any) -> None:
    errors: dict[str, list[str]] = {}
    if kind not in JobKind.values:
        errors["kind"] = [f"Unknown job kind {kind!r}; one of {', '.join(JobKind.values)}."]
    if not isinstance(payload, dict):
        errors["payload"] = ["The payload must be a JSON object."]
    elif kind == JobKind.COMMAND:
        command = payload.get("command")
        env = payload.get("env", {})
        if not isinstance(command, str) or not command.strip():
            errors["payload"] = ["A command job needs payload.command, a non-empty string."]
        elif not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            errors["payload"] = ["payload.env must map names to string values."]
    try:
        slug_validator(queue)
    except ValidationError as exc:
        errors["queue"] = list(exc.messages)
    if not isinstance(agent_tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in agent_tags.items()
    ):
        errors["agent_tags"] = ["agent_tags must map tag names to string values."]
    if timeout_s is not None and (not isinstance(timeout_s, int) or timeout_s < 1):
        errors["timeout_s"] = ["The timeout must be a positive number of seconds."]
    if _has_nul([payload, agent_tags]):
        errors["payload"] = ["NUL characters are not allowed."]
    if errors:
        raise ValidationError(errors)


def create_job(
    principal: Principal,
    organization: Organization,
    cluster: Cluster,
    *,
    kind: str,
    payload: dict[str, Any],
    queue: str = DEFAULT_QUEUE,
    agent_tags: dict[str, str] | None = None,
    priority: int = 0,
    timeout_s: int | None = None,
    expires_at: datetime | None = None,
    label: str = "",
    origin: str = "",
) -> Job:
    """Schedule a job on a cluster's queue. Needs the member role."""
    require_role(principal, organization, Role.MEMBER)
    if cluster.organization_id != organization.pk:
        raise Http404("No such cluster.")
    agent_tags = {} if agent_tags is None else agent_tags
    _validate_job(kind, payload, queue, agent_tags, timeout_s)
    label, origin = _no_nul(label), _no_nul(origin)
    now = timezone.now()
    if expires_at is None:
        expires_at = now + timedelta(seconds=int(settings.CONFIG.job_expiry_s))
    elif expires_at <= now:
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    with transaction.atomic():
        job = Job.objects.create(
            organization=organization,
            cluster=cluster,
            queue=queue,
            agent_tags=agent_tags,
            kind=kind,
            label=label[:300],
            payload=payload,
            origin=origin[:100],
            priority=priority,
            timeout_s=timeout_s,
            created_by=principal.actor.label[:200],
            created_at=now,
            expires_at=expires_at,
        )
        audit.record(
            principal.actor,
            "job.create",
            organization=organization,
            target=job,
            changes={"cluster": cluster.name, "queue": queue, "kind": kind, "label": job.label},
        )
        transaction.on_commit(wakeup.ring)  # idle agents of this process look at once
    return job


def _release_agent(job: Job, ignore_in_dispatches: bool | None = None) -> None:
    if job.agent_id is None:
        return
    fields: dict[str, Any] = {"current_job": None, "state": AgentState.IDLE}
    if ignore_in_dispatches is not None:
        fields["ignore_in_dispatches"] = ignore_in_dispatches
    Agent.objects.filter(pk=job.agent_id, current_job_id=job.pk, state=AgentState.BUSY).update(
        **fields
    )


def cancel_job(principal: Principal, job: Job) -> Job:
    """Cancel a job: at once when no agent runs it yet, else ask its agent to stop it."""
    require_role(principal, job.organization, Role.MEMBER)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            raise ValidationError({"state": [f"The job has already finished ({job.state})."]})
        now = timezone.now()
        before = job.state
        if job.cancel_requested_at is None:
            job.cancel_requested_at = now
            job.cancel_reason = JobState.CANCELED
        if job.state in (JobState.SCHEDULED, JobState.ASSIGNED):
            job.state = JobState.CANCELED
            job.finished_at = now
            _release_agent(job)
        job.save(update_fields=["state", "finished_at", "cancel_requested_at", "cancel_reason"])
        audit.record(
            principal.actor,
            "job.cancel",
            organization=job.organization,
            target=job,
            changes={"state": {"before": before, "after": job.state}},
        )
    return job


# --- agent registration and sessions ----------------------------------------------------------


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL; nothing legitimate needs it in a name or label.
    return text.replace("\x00", "")


def _split_tags(tags: dict[str, str]) -> tuple[str, dict[str, str]]:
    rest = {_no_nul(str(k)): _no_nul(str(v)) for k, v in tags.items() if k != "queue"}
    queue = str(tags.get("queue") or DEFAULT_QUEUE)
    try:
        slug_validator(queue)
    except ValidationError as exc:
        raise ValidationError({"tags": [f"queue: {m}" for m in exc.messages]}) from exc
    return queue, rest


def register_agent(
    registration_token: str,
    *,
    name: str,
    tags: dict[str, str],
    hostname: str = "",
    version: str = "",
    pid: int | None = None,
    priority: int = 0,
) -> Registration:
    """Register an agent in the token's cluster; its session token is returned once."""
    token = (
        AgentToken.objects.select_related("cluster__organization")
        .filter(token_hash=hash_token(registration_token))
        .first()
    )
    if token is None or not token.is_active:
        raise InvalidAgentToken("The agent token is unknown, expired or revoked.")
    queue_key, other_tags = _split_tags(tags)
    cluster = token.cluster
    session = new_token("ses")
    now = timezone.now()
    with transaction.atomic():
        Queue.objects.get_or_create(cluster=cluster, key=queue_key)
        agent = Agent.objects.create(
            cluster=cluster,
            registration_token=token,
            name=_no_nul(name or hostname or "agent")[:200],
            hostname=_no_nul(hostname)[:255],
            version=_no_nul(version)[:50],
            pid=pid,
            ip=client_ip(),
            queue=queue_key,
            tags=other_tags,
            priority=priority,
            session_token_hash=session.digest,
            registered_at=now,
            last_heartbeat_at=now,
        )
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        audit.record(
            Actor(label=f"agent-token:{token.prefix}", ip=client_ip()),
            "agent.register",
            organization=cluster.organization,
            target=agent,
            changes={"cluster": cluster.name, "queue": queue_key, "tags": other_tags},
        )
    return Registration(agent=agent, session_token=session.plaintext, intervals=Intervals.current())


def agent_for_session(session_token: str) -> Agent:
    agent = (
        Agent.objects.select_related("cluster")
        .filter(session_token_hash=hash_token(session_token), state__in=LIVE_AGENT_STATES)
        .first()
    )
    if agent is None:
        raise InvalidAgentToken("The agent session is unknown, disconnected or lost.")
    return agent


def job_for_token(job_token: str, job_id: int) -> Job:
    """The job a job token belongs to; any other job id is not found for this token."""
    if not job_token.startswith("bstjob_"):
        raise InvalidAgentToken("That is not a job token.")
    job = Job.objects.filter(token_hash=hash_token(job_token)).first()
    if job is None:
        raise InvalidAgentToken("The job token is unknown.")
    if job.finished_at is not None and timezone.now() - job.finished_at > JOB_TOKEN_GRACE:
        raise InvalidAgentToken("The job token expired with its job.")
    if job.pk != job_id:
        raise JobNotFound("No such job for this token.")
    return job


def heartbeat(agent: Agent) -> datetime:
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=now)
    return now


def disconnect(agent: Agent) -> None:
    """The agent leaves: jobs it had not accepted go back to the queue, running ones are lost."""
    now = timezone.now()
    with transaction.atomic():
        changed = Agent.objects.filter(pk=agent.pk, state__in=LIVE_AGENT_STATES).update(
            state=AgentState.DISCONNECTED, disconnected_at=now, current_job=None
        )
        if not changed:
            return
        requeued, lost = abandon_jobs(agent.pk, now, "agent_stop")
        audit.record(
            _agent_actor(agent),
            "agent.disconnect",
            organization=agent.cluster.organization,
            target=agent,
            changes={"jobs_requeued": requeued, "jobs_lost": lost},
        )


# --- polling and assignment -------------------------------------------------------------------


def _tags_match(required: dict[str, str], offered: dict[str, str]) -> bool:
    return all(
        key in offered and (value == "*" or offered[key] == value)
        for key, value in required.items()
    )


def _candidates(agent: Agent, now: datetime) -> list[int]:
    paused = Queue.objects.filter(
        cluster_id=OuterRef("cluster_id"), key=OuterRef("queue"), paused=True
    )
    rows = (
        Job.objects.filter(cluster_id=agent.cluster_id, state=JobState.SCHEDULED, queue=agent.queue)
        .exclude(Exists(paused))
        .order_by("-priority", "created_at", "pk")
        .values_list("pk", "agent_tags", "expires_at")[:CANDIDATES]
    )
    offered = agent.tags if isinstance(agent.tags, dict) else {}
    return [
        pk
        for pk, required, expires_at in rows
        if (expires_at is None or expires_at > now) and _tags_match(required or {}, offered)
    ]


def _try_assign(agent: Agent, job_id: int, now: datetime) -> bool:
    # One conditional UPDATE decides the winner; it is its own short transaction, so a losing
    # agent holds no lock (SQLite has one writer at a time). The agent row is informational
    # (polls find an agent's work through the job table), so it is updated afterwards.
    won = Job.objects.filter(pk=job_id, state=JobState.SCHEDULED).update(
        state=JobState.ASSIGNED, agent=agent, assigned_at=now
    )
    if won:
        Agent.objects.filter(pk=agent.pk).update(state=AgentState.BUSY, current_job=job_id)
    return bool(won)


def _current_assignment(agent: Agent, redeliver: bool = False) -> tuple[Job | None, bool]:
    """(the job assigned but not yet accepted, whether the agent is busy with any job).

    With ``redeliver``, a job this agent already accepted counts as assigned: an agent that
    accepts through its poll runs one job at a time and polls only between jobs, so a poll while
    it holds one means the answer that handed it out was lost."""
    active = Job.objects.filter(agent_id=agent.pk, state__in=ACTIVE_STATES).order_by("pk").first()
    if active is None:
        return None, False
    return (active if redeliver or active.state == JobState.ASSIGNED else None), True


def poll(agent: Agent) -> Job | None:
    """Assign at most one matching job to the agent, or return the one already assigned."""
    assigned, busy = _current_assignment(agent)
    if busy or agent.ignore_in_dispatches:
        return assigned
    return _assign_next(agent)


def _assign_next(agent: Agent) -> Job | None:
    now = timezone.now()
    for job_id in _candidates(agent, now):
        if _try_assign(agent, job_id, now):
            job = Job.objects.get(pk=job_id)
            reason = gates.refusal(job)
            if reason is None:
                return job
            gates.refuse(_agent_actor(agent), job, reason)
    return None


def long_poll(agent: Agent, wait_s: float, *, redeliver: bool = False) -> Job | None:
    """Poll, waiting up to ``wait_s`` (capped by the server) for work; counts as a heartbeat.
    ``redeliver``: see ``_current_assignment``."""
    if timezone.now() - agent.last_heartbeat_at > POLL_HEARTBEAT_PRECISION:
        heartbeat(agent)  # at most once a second: a busy poller does not write on every poll
    assigned, busy = _current_assignment(agent, redeliver)
    if busy or agent.ignore_in_dispatches:
        return assigned
    deadline = time.monotonic() + max(0.0, min(wait_s, float(settings.CONFIG.agent_long_poll_s)))
    for _ in range(100_000):  # bounded by the deadline; the count is a second guard
        rung = wakeup.generation()
        job = _assign_next(agent)
        if job is not None or time.monotonic() >= deadline:
            return job
        # Look again after LONG_POLL_CHECK_S, or as soon as a job is created in this process.
        wakeup.wait(rung, min(LONG_POLL_CHECK_S, max(0.0, deadline - time.monotonic())))
    return None


# --- running a job ----------------------------------------------------------------------------


def accept(agent: Agent, job_id: int, *, start: bool = False) -> AcceptedJob:
    """Accept a job assigned to this agent; returns a token valid for that job only.

    With ``start`` the job is also marked running: our agent starts a job as soon as it has
    accepted it, and one request instead of two is one round trip less per job on the dispatch
    path. Accepting again (a retry whose answer was lost) issues a new token and voids the old one.
    """
    secret = new_token("job")
    now = timezone.now()
    mine = Job.objects.filter(pk=job_id, agent_id=agent.pk, cluster_id=agent.cluster_id)
    acceptable = [JobState.ASSIGNED, JobState.ACCEPTED]
    changes: dict[str, Any] = {
        "state": JobState.ACCEPTED,
        "accepted_at": now,
        "token_hash": secret.digest,
    }
    if start:
        acceptable.append(JobState.RUNNING)
        changes |= {"state": JobState.RUNNING, "started_at": Coalesce("started_at", Value(now))}
    accepted = mine.filter(state__in=acceptable).update(**changes)
    job = mine.first()
    if job is None:
        raise JobNotFound("No such job assigned to this agent.")
    if not accepted:
        raise JobConflict(f"The job cannot be accepted: it is {job.state}.")
    return AcceptedJob(spec=JobSpec.of(job), token=secret.plaintext)


def start(job: Job) -> Job:
    started = Job.objects.filter(pk=job.pk, state=JobState.ACCEPTED).update(
        state=JobState.RUNNING, started_at=timezone.now()
    )
    job = Job.objects.get(pk=job.pk)
    if not started and job.state != JobState.RUNNING:
        raise JobConflict(f"The job cannot start: it is {job.state}.")
    return job


def job_status(job: Job) -> JobStatus:
    row = Job.objects.values("state", "cancel_requested_at", "cancel_reason").get(pk=job.pk)
    return JobStatus(
        state=row["state"],
        cancel_requested=row["cancel_requested_at"] is not None,
        cancel_reason=row["cancel_reason"],
    )


def _final_state(job: Job, exit_status: int) -> str:
    if job.cancel_requested_at is not None:
        return JobState.TIMED_OUT if job.cancel_reason == JobState.TIMED_OUT else JobState.CANCELED
    return JobState.PASSED if exit_status == 0 else JobState.FAILED


def finish(
    job: Job,
    exit_status: int,
    signal_reason: str = "",
    *,
    ignore_in_dispatches: bool = False,
    log: LogChunk | None = None,
) -> Job:
    """Record the exit status. A job whose cancel was requested ends canceled or timed_out.

    ``log`` is the job's last log chunk, stored first and in the same transaction exactly as
    ``append_log`` stores any chunk (one request less per job for the agent); a retried finish
    finds it stored already."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            if job.state != JobState.LOST and job.exit_status == exit_status:
                return job  # a retried finish (its last chunk was stored with the first)
            raise JobConflict(f"The job has already finished ({job.state}).")
        if job.state not in (JobState.ACCEPTED, JobState.RUNNING):
            raise JobConflict(f"The job cannot finish: it is {job.state}.")
        if log is not None:
            append_log(job, log.seq, log.data)
        job.state = _final_state(job, exit_status)
        job.exit_status = exit_status
        job.signal_reason = signal_reason[:50]
        job.finished_at = timezone.now()
        job.save(update_fields=["state", "exit_status", "signal_reason", "finished_at"])
        _release_agent(job, ignore_in_dispatches=ignore_in_dispatches or None)
    return job
