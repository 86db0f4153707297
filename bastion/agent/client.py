"""The agent's HTTP client for the agent API: the only way the agent talks to the server.

Only retryable failures are retried (timeouts, connection errors, 429 and 5xx), with jittered
exponential backoff and a bounded number of attempts. A 401 raises ``Unauthorized``, which stops
the agent; other 4xx raise ``Refused`` and are not retried.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from bastion import __version__ as bastion_version

# The agent's session token, sent along with a job-token call that also acts for the agent.
SESSION_HEADER = "X-Bastion-Session"


class AgentApiError(Exception):
    """The agent API refused a call or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(AgentApiError):
    """401: the token is unknown, expired, revoked or the agent was marked lost. Stop."""


class Refused(AgentApiError):
    """A 4xx other than 401: the request itself is wrong for the job's state; do not retry."""


class Unavailable(AgentApiError):
    """Retries exhausted on timeouts, connection errors, 429 or 5xx."""


@dataclass(frozen=True)
class Intervals:
    poll_s: float
    long_poll_s: float
    heartbeat_s: float
    job_status_s: float

    @classmethod
    def of(cls, data: dict[str, Any]) -> Intervals:
        return cls(
            poll_s=float(data["poll_s"]),
            long_poll_s=float(data["long_poll_s"]),
            heartbeat_s=float(data["heartbeat_s"]),
            job_status_s=float(data["job_status_s"]),
        )


@dataclass(frozen=True)
class Registration:
    agent_id: int
    name: str
    session_token: str
    intervals: Intervals


@dataclass(frozen=True)
class AcceptedJob:
    id: int
    kind: str
    label: str
    payload: dict[str, Any]
    timeout_s: int | None
    token: str
    # The server stores a log chunk sent with /finish (older servers would drop it).
    finish_takes_log: bool = False


@dataclass(frozen=True)
class JobStatus:
    state: str
    cancel_requested: bool
    cancel_reason: str


@dataclass(frozen=True)
class LogChunk:
    seq: int
    data: str


@dataclass(frozen=True)
class Finished:
    """The finish answer; with ``session`` given to finish, the agent's next job (already
    accepted and running) when the server had one, and the server's current intervals."""

    status: JobStatus
    next_job: AcceptedJob | int | None = None
    intervals: Intervals | None = None


@dataclass(frozen=True)
class Retry:
    attempts: int = 8
    base_s: float = 0.25
    max_s: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            try:
                return min(self.max_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_s, self.base_s * 2**attempt) * random.uniform(0.5, 1.0)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


class AgentClient:
    def __init__(
        self,
        server: str,
        *,
        timeout_s: float = 15.0,
        retry: Retry | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.base = server.rstrip("/") + "/api/v1/agent"
        self.retry = retry or Retry()
        self.timeout_s = timeout_s
        # Set when the agent is shutting down hard: waits between retries end early.
        self.stop = stop or threading.Event()
        self._http = httpx.Client(
            timeout=timeout_s, headers={"User-Agent": f"bastion-agent/{bastion_version}"}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        token: str,
        *,
        timeout_s: float | None = None,
        attempts: int | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        headers = {**(headers or {}), "Authorization": f"Token {token}"}
        last: str = "no attempt made"
        total = attempts or self.retry.attempts
        for attempt in range(total):
            retry_after: str | None = None
            try:
                response = self._http.request(
                    method,
                    self.base + path,
                    headers=headers,
                    timeout=timeout_s or self.timeout_s,
                    **kwargs,
                )
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    try:
                        body: dict[str, Any] = response.json()
                    except ValueError:  # not our server's answer (a proxy's page?): retry
                        last = f"HTTP {response.status_code} with a body that is not JSON"
                    else:
                        return body
                elif response.status_code == 401:
                    raise Unauthorized(_detail(response), 401)
                elif response.status_code != 429 and response.status_code < 500:
                    raise Refused(_detail(response), response.status_code)
                else:
                    last = f"HTTP {response.status_code}: {_detail(response)}"
                    retry_after = response.headers.get("Retry-After")
            if attempt + 1 < total and self.stop.wait(self.retry.delay(attempt, retry_after)):
                break
        raise Unavailable(f"{method} {path} failed after retries: {last}")

    # --- agent-level calls (registration and session tokens) ---------------------------------

    def register(
        self, token: str, *, name: str, hostname: str, tags: dict[str, str], pid: int
    ) -> Registration:
        body = self.request(
            "POST",
            "/register",
            token,
            json={
                "name": name,
                "hostname": hostname,
                "tags": tags,
                "pid": pid,
                "version": bastion_version,
            },
        )
        return Registration(
            agent_id=int(body["id"]),
            name=str(body["name"]),
            session_token=str(body["session_token"]),
            intervals=Intervals.of(body["intervals"]),
        )

    def poll(self, session: str, wait_s: float) -> tuple[AcceptedJob | int | None, Intervals]:
        """Ask for a job, accepted and started in the same request (``accept=true``); a server
        that does not accept through the poll answers with the job's id only."""
        body = self.request(
            "POST",
            "/poll",
            session,
            params={"wait": f"{wait_s:.3f}", "accept": "true"},
            timeout_s=wait_s + self.timeout_s,
        )
        return _polled(body)

    def heartbeat(self, session: str) -> None:
        self.request("POST", "/heartbeat", session, attempts=3)

    def disconnect(self, session: str) -> None:
        self.request("POST", "/disconnect", session, attempts=3)

    def accept(self, session: str, job_id: int) -> AcceptedJob:
        """Accept the job and mark it running in the same request (``start=true``)."""
        return _accepted_job(self.request("POST", f"/jobs/{job_id}/accept?start=true", session))

    # --- calls on one job (job token) ----------------------------------------------------------

    def status(self, job: AcceptedJob) -> JobStatus:
        body = self.request("GET", f"/jobs/{job.id}", job.token, attempts=2)
        return JobStatus(
            state=str(body["state"]),
            cancel_requested=bool(body["cancel_requested"]),
            cancel_reason=str(body["cancel_reason"]),
        )

    def log(self, job: AcceptedJob, seq: int, data: str) -> bool:
        """Upload one chunk; True once the server's copy reached its cap (log truncated)."""
        answer = self.request(
            "POST", f"/jobs/{job.id}/log", job.token, json={"seq": seq, "data": data}
        )
        return bool(answer.get("truncated"))

    def upload_artifact(self, job: AcceptedJob, path: str, content: bytes) -> dict[str, Any]:
        return self.request(
            "POST",
            f"/artifacts/{job.id}",
            job.token,
            data={"path": path},
            files={"file": (path.rsplit("/", 1)[-1], content)},
        )

    def finish(
        self,
        job: AcceptedJob,
        exit_status: int,
        signal_reason: str = "",
        *,
        ignore_in_dispatches: bool = False,
        log: LogChunk | None = None,
        session: str | None = None,
    ) -> Finished:
        """Finish the job. ``log``: its last chunk, stored by the server before it finishes the
        job (only for a job whose server said ``finish_takes_log``). ``session``: this agent's
        session token, to have the answer carry the next job (``next=true``); a server that does
        not do that answers without it and the agent polls as usual."""
        body: dict[str, Any] = {
            "exit_status": exit_status,
            "signal_reason": signal_reason,
            "ignore_in_dispatches": ignore_in_dispatches,
        }
        if log is not None:
            body["log"] = {"seq": log.seq, "data": log.data}
        extra: dict[str, Any] = {}
        if session is not None:
            extra = {"params": {"next": "true"}, "headers": {SESSION_HEADER: session}}
        answer = self.request("POST", f"/jobs/{job.id}/finish", job.token, json=body, **extra)
        status = JobStatus(
            state=str(answer["state"]),
            cancel_requested=bool(answer["cancel_requested"]),
            cancel_reason=str(answer["cancel_reason"]),
        )
        following = answer.get("next") if session is not None else None
        if not isinstance(following, dict):
            return Finished(status)
        next_job, intervals = _polled(following)
        return Finished(status, next_job, intervals)


def _polled(body: dict[str, Any]) -> tuple[AcceptedJob | int | None, Intervals]:
    """A poll answer: the job accepted and running, or only its id (a server that does not
    accept through the poll), or nothing; and the server's intervals."""
    intervals = Intervals.of(body["intervals"])
    if body.get("accepted"):
        return _accepted_job(body["accepted"]), intervals
    job = body.get("job")
    return (int(job["id"]) if job else None), intervals


def _accepted_job(body: dict[str, Any]) -> AcceptedJob:
    return AcceptedJob(
        id=int(body["id"]),
        kind=str(body["kind"]),
        label=str(body["label"]),
        payload=dict(body["payload"]),
        timeout_s=body.get("timeout_s"),
        token=str(body["token"]),
        finish_takes_log=bool(body.get("finish_takes_log")),
    )
