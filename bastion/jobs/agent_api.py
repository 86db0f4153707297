"""The agent API under /api/v1/agent/: register, poll, accept, heartbeat, log, finish, artifacts.

Every call authenticates with ``Authorization: Token <secret>``: the cluster's registration
token for ``/register``, the agent's session token for agent-level calls, and the per-job token
for calls on one job (which can act on that job only). Intervals are set by the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import File, Form, Query, Router, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.security import APIKeyHeader
from pydantic import Field

from bastion.jobs import dispatch
from bastion.jobs.errors import DispatchError, InvalidAgentToken
from bastion.jobs.logs import log_max_bytes
from bastion.jobs.models import Agent, Job

router = Router(tags=["agent"], auth=None)
# The agent's session token, sent with a job-token call that also acts for the agent.
SESSION_HEADER = "X-Bastion-Session"


def _bearer(value: str | None) -> str | None:
    scheme, _, secret = (value or "").partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not secret.strip():
        return None
    return secret.strip()


class _TokenHeader(APIKeyHeader):
    param_name = "Authorization"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return _bearer(key)


class SessionTokenAuth(_TokenHeader):
    """An agent's session token → the live Agent."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Agent | None:
        secret = _bearer(key)
        if secret is None:
            return None
        try:
            return dispatch.agent_for_session(secret)
        except InvalidAgentToken:
            return None


class RegistrationTokenAuth(_TokenHeader):
    """A cluster's agent (registration) token, checked by ``register_agent`` itself."""


class JobTokenAuth(_TokenHeader):
    """A per-job token, checked against the job id of the path by ``job_for_token``."""


registration_auth = RegistrationTokenAuth()
session_auth = SessionTokenAuth()
job_auth = JobTokenAuth()


@contextmanager
def _translated() -> Iterator[None]:
    """Map the dispatch exception hierarchy to HTTP errors, in this one place."""
    try:
        yield
    except DispatchError as exc:
        raise HttpError(exc.status, str(exc)) from exc


def _job(request: HttpRequest, job_id: int) -> Job:
    with _translated():
        return dispatch.job_for_token(str(request.auth), job_id)  # type: ignore[attr-defined]


def _agent(request: HttpRequest) -> Agent:
    agent: Agent = request.auth  # type: ignore[attr-defined]
    return agent


# --- schemas ------------------------------------------------------------------------------------


class IntervalsOut(Schema):
    poll_s: float
    long_poll_s: float
    heartbeat_s: float
    job_status_s: float

    @classmethod
    def current(cls) -> IntervalsOut:
        i = dispatch.Intervals.current()
        return cls(
            poll_s=i.poll_s,
            long_poll_s=i.long_poll_s,
            heartbeat_s=i.heartbeat_s,
            job_status_s=i.job_status_s,
        )


class RegisterIn(Schema):
    name: str = Field("", max_length=200)
    hostname: str = Field("", max_length=255)
    version: str = Field("", max_length=50)
    pid: int | None = None
    priority: int = 0
    tags: dict[str, str] = Field(default_factory=dict)


class RegisterOut(Schema):
    id: int
    name: str
    cluster: str
    queue: str
    tags: dict[str, str]
    session_token: str
    intervals: IntervalsOut


class AssignedOut(Schema):
    id: int
    kind: str
    label: str


class AcceptOut(Schema):
    id: int
    kind: str
    label: str
    payload: dict[str, Any]
    timeout_s: int | None
    token: str
    log_max_bytes: int
    # This server stores a ``log`` chunk sent with /finish (an older one would drop it unseen).
    finish_takes_log: bool = True

    @classmethod
    def of(cls, accepted: dispatch.AcceptedJob) -> AcceptOut:
        spec = accepted.spec
        return cls(
            id=spec.id,
            kind=spec.kind,
            label=spec.label,
            payload=spec.payload,
            timeout_s=spec.timeout_s,
            token=accepted.token,
            log_max_bytes=log_max_bytes(),
        )


class PollOut(Schema):
    job: AssignedOut | None
    # With ``accept=true``: the job, already accepted and running (no /accept call needed).
    accepted: AcceptOut | None = None
    intervals: IntervalsOut


class StatusOut(Schema):
    id: int
    state: str
    cancel_requested: bool
    cancel_reason: str


class HeartbeatOut(Schema):
    received_at: datetime


class LogIn(Schema):
    seq: int = Field(..., ge=0, le=10_000_000)
    data: str


class LogOut(Schema):
    stored: bool
    log_bytes: int
    truncated: bool


class FinishIn(Schema):
    exit_status: int = Field(..., ge=-1, le=100_000)
    signal_reason: str = Field("", max_length=50)
    ignore_in_dispatches: bool = False
    # The job's last log chunk, stored as /log would store it, before the job finishes.
    log: LogIn | None = None


class FinishOut(StatusOut):
    # With ``next=true``: the agent's next job, as ``poll?accept=true`` answers (no waiting).
    next: PollOut | None = None


class ArtifactOut(Schema):
    id: int
    path: str
    size: int
    sha256: str


class OkOut(Schema):
    ok: bool


def _status(job: Job) -> StatusOut:
    status = dispatch.job_status(job)
    return StatusOut(
        id=job.pk,
        state=status.state,
        cancel_requested=status.cancel_requested,
        cancel_reason=status.cancel_reason,
    )


# --- agent-level calls --------------------------------------------------------------------------


@router.post("/register", auth=registration_auth, response=RegisterOut)
def register(request: HttpRequest, body: RegisterIn) -> RegisterOut:
    with _translated():
        registration = dispatch.register_agent(
            str(request.auth),  # type: ignore[attr-defined]
            name=body.name,
            tags=body.tags,
            hostname=body.hostname,
            version=body.version,
            pid=body.pid,
            priority=body.priority,
        )
    agent = registration.agent
    return RegisterOut(
        id=agent.pk,
        name=agent.name,
        cluster=agent.cluster.name,
        queue=agent.queue,
        tags=agent.tags,
        session_token=registration.session_token,
        intervals=IntervalsOut.current(),
    )


@router.post("/poll", auth=session_auth, response=PollOut)
def poll(request: HttpRequest, wait: float = 0.0, accept: bool = False) -> PollOut:
    """Ask for work; the server holds the request up to ``wait`` seconds (capped by its long-poll
    time) until a job is assigned, checking about every 100 ms. With ``accept=true`` the job
    comes back accepted and running, as ``/accept?start=true`` would answer: one round trip per
    job instead of two; if that answer is lost, the next such poll hands the same job out again."""
    wait = wait if wait == wait else 0.0  # NaN waits nothing
    return _poll_answer(_agent(request), wait, accept=accept)


def _poll_answer(agent: Agent, wait: float, *, accept: bool) -> PollOut:
    job = dispatch.long_poll(agent, wait, redeliver=accept)
    if job is None:
        return PollOut(job=None, intervals=IntervalsOut.current())
    assigned = AssignedOut(id=job.pk, kind=job.kind, label=job.label)
    accepted = None
    if accept:
        with _translated():
            accepted = AcceptOut.of(dispatch.accept(agent, job.pk, start=True))
    return PollOut(job=assigned, accepted=accepted, intervals=IntervalsOut.current())


@router.post("/heartbeat", auth=session_auth, response=HeartbeatOut)
def heartbeat(request: HttpRequest) -> HeartbeatOut:
    return HeartbeatOut(received_at=dispatch.heartbeat(_agent(request)))


@router.post("/disconnect", auth=session_auth, response=OkOut)
def disconnect(request: HttpRequest) -> OkOut:
    dispatch.disconnect(_agent(request))
    return OkOut(ok=True)


@router.post("/jobs/{job_id}/accept", auth=session_auth, response=AcceptOut)
def accept(request: HttpRequest, job_id: int, start: bool = False) -> AcceptOut:
    """Accept an assigned job; with ``start=true`` also mark it running (no separate /start)."""
    with _translated():
        return AcceptOut.of(dispatch.accept(_agent(request), job_id, start=start))


# --- calls on one job, with its job token --------------------------------------------------------


@router.post("/jobs/{job_id}/start", auth=job_auth, response=StatusOut)
def start(request: HttpRequest, job_id: int) -> StatusOut:
    job = _job(request, job_id)
    with _translated():
        dispatch.start(job)
    return _status(job)


@router.get("/jobs/{job_id}", auth=job_auth, response=StatusOut)
def status(request: HttpRequest, job_id: int) -> StatusOut:
    """The job's state and whether a cancel was requested (agents check this about every second)."""
    return _status(_job(request, job_id))


@router.post("/jobs/{job_id}/log", auth=job_auth, response=LogOut)
def append_log(request: HttpRequest, job_id: int, body: LogIn) -> LogOut:
    job = _job(request, job_id)
    with _translated():
        result = dispatch.append_log(job, body.seq, body.data)
    return LogOut(stored=result.stored, log_bytes=result.log_bytes, truncated=result.truncated)


@router.post("/artifacts/{job_id}", auth=job_auth, response=ArtifactOut)
def upload_artifact(
    request: HttpRequest,
    job_id: int,
    path: Form[str],
    file: File[UploadedFile],
    content_type: Form[str] = "",
) -> ArtifactOut:
    job = _job(request, job_id)
    with _translated():
        artifact = dispatch.upload_artifact(job, path, file, content_type)
    return ArtifactOut(
        id=artifact.pk, path=artifact.path, size=artifact.size, sha256=artifact.sha256
    )


@router.post("/jobs/{job_id}/finish", auth=job_auth, response=FinishOut)
def finish(
    request: HttpRequest,
    job_id: int,
    body: FinishIn,
    next_job: bool = Query(False, alias="next"),
) -> FinishOut:
    """Finish the job, storing the last log chunk sent with it first. With ``next=true`` and
    the agent's session token in the ``X-Bastion-Session`` header (the job token alone reaches
    no other job: the job's own commands hold it), the answer carries the agent's next job
    accepted and running, as ``poll?accept=true`` would answer without waiting; if that answer
    is lost, the retried finish (or the next poll) hands the same job out again."""
    job = _job(request, job_id)
    agent = _finishing_agent(request, job) if next_job else None
    log = dispatch.LogChunk(body.log.seq, body.log.data) if body.log is not None else None
    with _translated():
        job = dispatch.finish(
            job,
            body.exit_status,
            body.signal_reason,
            ignore_in_dispatches=body.ignore_in_dispatches,
            log=log,
        )
    following = None
    if agent is not None:
        if body.ignore_in_dispatches:  # the agent is leaving: no more work for it
            following = PollOut(job=None, intervals=IntervalsOut.current())
        else:
            following = _poll_answer(agent, 0.0, accept=True)
    return FinishOut(**_status(job).model_dump(), next=following)


def _finishing_agent(request: HttpRequest, job: Job) -> Agent:
    """The live agent whose session token came with the finish; it must be the job's agent."""
    secret = (request.headers.get(SESSION_HEADER) or "").strip()
    if not secret:
        raise HttpError(400, f"next=true needs the agent's session token in {SESSION_HEADER}.")
    with _translated():
        agent = dispatch.agent_for_session(secret)
    if job.agent_id != agent.pk:
        raise HttpError(404, "No such job assigned to this agent.")
    return agent
