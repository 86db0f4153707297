"""The agent process: register, poll with jitter, accept, run, stream, finish.

Signals: the first SIGTERM/SIGINT is graceful (finish the current job, then disconnect); a
second one cancels the running job (SIGTERM, then SIGKILL to its process group) and exits.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from bastion.agent.client import (
    AcceptedJob,
    AgentApiError,
    AgentClient,
    Intervals,
    LogChunk,
    Refused,
    Registration,
    Unauthorized,
    Unavailable,
)
from bastion.agent.executors import JobContext, JobOutcome, executor_for
from bastion.agent.stream import (
    REDACTIONS_ENV,
    REDACTIONS_FILE,
    CancelWatch,
    LogStreamer,
    secret_values,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

logger = logging.getLogger("bastion.agent")

# The long poll the agent asks for: short enough that a graceful stop is prompt.
MAX_POLL_WAIT_S = 5.0
DEFAULT_GRACE_S = 5.0
MAX_ARTIFACT_PATTERNS = 50
MAX_ARTIFACTS = 500
MAX_ARTIFACT_BYTES = 100 * 1024 * 1024
# An agent runs this many poll cycles at most before it restarts itself (a bound, ~weeks).
MAX_CYCLES = 10_000_000


@dataclass(frozen=True)
class AgentOptions:
    server: str
    token: str
    tags: dict[str, str]
    name: str = ""
    disconnect_after_job: bool = False
    grace_s: float = DEFAULT_GRACE_S
    hooks_path: Path | None = None
    verification_key: Ed25519PublicKey | None = None


def parse_tags(text: str) -> dict[str, str]:
    """``queue=default,os=linux`` → {"queue": "default", "os": "linux"}."""
    tags: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"a tag is key=value, got {item!r}")
        tags[key.strip()] = value.strip()
    return tags


def job_base_env() -> dict[str, str]:
    """The environment a job starts from: the agent's own, minus Bastion's configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}


class AgentWorker:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.stopping = threading.Event()  # first signal: no new work
        self.aborting = threading.Event()  # second signal: cancel the running job
        self.refused = threading.Event()  # the server refused the session (401): stop, exit 1
        self.client = AgentClient(options.server, stop=self.aborting)
        # httpx clients are not shared across threads: the heartbeat has its own.
        self.beat_client = AgentClient(options.server, stop=self._beat_stop_event())
        self.log_client = AgentClient(options.server, stop=self.aborting)  # log streamer thread
        self.session = ""
        self.intervals: Intervals | None = None

    def _beat_stop_event(self) -> threading.Event:
        self._beat_stop = threading.Event()
        return self._beat_stop

    # --- signals ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping.is_set():
            logger.warning("second stop signal: canceling the running job and exiting")
            self.aborting.set()
        else:
            logger.warning("stop signal: finishing the current job, then disconnecting")
            self.stopping.set()

    # --- the main loop ----------------------------------------------------------------------

    def run(self) -> int:
        try:
            registration = self._register()
        except Unauthorized as exc:
            logger.error("registration refused: %s", exc)
            return 1
        except AgentApiError as exc:
            logger.error("could not register: %s", exc)
            return 2
        self.session = registration.session_token
        self.intervals = registration.intervals
        logger.info("registered as %s (agent %s)", registration.name, registration.agent_id)
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        code = 0
        try:
            code = self._work_loop()
            code = 1 if self.refused.is_set() else code
        finally:
            self._beat_stop.set()
            beat.join(timeout=10)
            if code != 1:
                self._disconnect()
            self.client.close()
            self.beat_client.close()
            self.log_client.close()
        return code

    def _register(self) -> Registration:
        hostname = socket.gethostname()
        return self.client.register(
            self.options.token,
            name=self.options.name or f"{hostname}-{os.getpid()}",
            hostname=hostname,
            tags=self.options.tags,
            pid=os.getpid(),
        )

    def _disconnect(self) -> None:
        try:
            self.client.disconnect(self.session)
        except AgentApiError as exc:
            logger.warning("disconnect failed: %s", exc)

    def _work_loop(self) -> int:
        job: AcceptedJob | int | None
        handed: AcceptedJob | int | None = None  # the next job, handed out with the finish
        for _ in range(MAX_CYCLES):
            assert self.intervals is not None
            if handed is not None:
                # Already accepted and running on the server: run it, as a polled job would be,
                # even if a stop signal came meanwhile (the job must not be left running).
                job, handed = handed, None
            elif self.stopping.is_set() or self.aborting.is_set():
                return 0
            else:
                try:
                    job, self.intervals = self.client.poll(
                        self.session, min(self.intervals.long_poll_s, MAX_POLL_WAIT_S)
                    )
                except Unauthorized as exc:
                    logger.error("the server refused this agent's session: %s", exc)
                    return 1
                except AgentApiError as exc:
                    logger.warning("poll failed: %s", exc)
                    job = None
            if job is not None:
                try:
                    handed = self._run_job(job)
                except Unauthorized as exc:
                    logger.error("the server refused a token while running a job: %s", exc)
                    return 1
                if self.options.disconnect_after_job:
                    return 0
                continue  # the next poll skips the wait, as after any job
            self._wait_jitter(self.intervals)
        return 0

    def _wait_jitter(self, intervals: Intervals) -> None:
        if intervals.long_poll_s > 0:
            delay = random.uniform(0, min(intervals.poll_s, 1.0) * 0.1)
        else:
            delay = intervals.poll_s + random.uniform(0, intervals.poll_s)
        self.stopping.wait(delay)

    def _heartbeat_loop(self) -> None:
        for _ in range(MAX_CYCLES):
            interval = self.intervals.heartbeat_s if self.intervals else 10.0
            if self._beat_stop.wait(interval):
                return
            try:
                self.beat_client.heartbeat(self.session)
            except Unauthorized:
                logger.error("heartbeat refused: this agent was disconnected or marked lost")
                self.refused.set()
                self.stopping.set()
                self.aborting.set()
                return
            except AgentApiError as exc:
                logger.warning("heartbeat failed: %s", exc)

    # --- one job ------------------------------------------------------------------------------

    def _run_job(self, polled: AcceptedJob | int) -> AcceptedJob | int | None:
        """Run one job and finish it; returns the next job when the finish answer carried one."""
        if isinstance(polled, AcceptedJob):
            job = polled
        else:
            try:
                job = self.client.accept(self.session, polled)
            except Refused as exc:
                logger.info("job %s was not accepted: %s", polled, exc)
                return None
        logger.info("running job %s (%s)", job.id, job.kind)
        outcome, last_chunk = self._execute(job)
        return self._finish(job, outcome, last_chunk)

    def _finish(
        self, job: AcceptedJob, outcome: JobOutcome, last_chunk: LogChunk | None
    ) -> AcceptedJob | int | None:
        """Finish the job with its last log chunk and, unless this agent is leaving, ask for
        the next job in the same request. A refusal with the chunk is tried once without it (a
        server whose body limit is below one chunk): the job must finish even if that is lost."""
        leaving = self.options.disconnect_after_job or self.stopping.is_set()
        for log in (last_chunk, None) if last_chunk is not None else (None,):
            try:
                final = self.client.finish(
                    job,
                    outcome.exit_status,
                    outcome.signal_reason,
                    ignore_in_dispatches=leaving,
                    log=log,
                    session=None if leaving else self.session,
                )
            except Refused as exc:
                logger.warning("job %s: finish refused: %s", job.id, exc)
                continue
            state = final.status.state
            logger.info("job %s finished: %s (exit %s)", job.id, state, outcome.exit_status)
            if final.intervals is not None:
                self.intervals = final.intervals
            if final.next_job is not None:
                logger.info("the finish answer handed out the next job")
            return final.next_job
        return None

    def _execute(self, job: AcceptedJob) -> tuple[JobOutcome, LogChunk | None]:
        env = job.payload.get("env") or {}
        declared = job.payload.get("secret_env") or []
        secrets = secret_values(
            {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
            [str(n) for n in declared] if isinstance(declared, list) else [],
        )
        secrets.append(job.token)
        with (
            tempfile.TemporaryDirectory(prefix=f"bastion-redact-{job.id}-") as private,
            LogStreamer(
                self.log_client,
                job,
                secrets,
                redactions=Path(private) / REDACTIONS_FILE,
                hold_last=job.finish_takes_log,
            ) as stream,
            tempfile.TemporaryDirectory(prefix=f"bastion-job-{job.id}-") as workdir,
        ):
            outcome = self._run_executor(job, Path(workdir), stream.write, stream.redactions)
            upload_artifacts(self.client, job, Path(workdir), stream.write)
        return outcome, stream.last_chunk  # set by the final flush, when the stream closed

    def _run_executor(
        self,
        job: AcceptedJob,
        workdir: Path,
        log: Callable[[str], None],
        redactions: Path | None = None,
    ) -> JobOutcome:
        try:
            run = executor_for(job.kind)
        except ImportError as exc:
            logger.exception("job %s: the %s executor could not be loaded", job.id, job.kind)
            log(f"[bastion-agent] the {job.kind} executor could not load: {exc}\n")
            return JobOutcome(exit_status=1, signal_reason="agent_refused")
        if run is None:
            log(
                f"[bastion-agent] no executor for job kind {job.kind!r} on this agent; the job fails.\n"
            )
            return JobOutcome(exit_status=1, signal_reason="agent_refused")
        assert self.intervals is not None
        base_env = job_base_env()
        base_env.update(
            {
                "BASTION_JOB_ID": str(job.id),
                "BUILDKITE_JOB_ID": str(job.id),
                "BASTION_JOB_KIND": job.kind,
                # For `bastion meta-data`, `pipeline upload`, `artifact`, `annotate` in the job:
                # the job token reaches this job (and its build) only, and is redacted from logs.
                "BASTION_AGENT_ENDPOINT": self.options.server,
                "BASTION_AGENT_ACCESS_TOKEN": job.token,
                "BUILDKITE_BUILD_CHECKOUT_PATH": str(workdir),
            }
        )
        if redactions is not None:
            # `bastion secret get` appends the values it prints here; the log streamer redacts them.
            base_env[REDACTIONS_ENV] = str(redactions)
        context = JobContext(
            job_id=job.id,
            kind=job.kind,
            payload=job.payload,
            timeout_s=job.timeout_s,
            workdir=workdir,
            env=base_env,
            log=log,
            cancel_requested=CancelWatch(
                self.client, job, self.intervals.job_status_s, self.aborting
            ),
            grace_s=self.options.grace_s,
            hooks_path=self.options.hooks_path,
            verification_key=self.options.verification_key,
            agent_tags=dict(self.options.tags),
        )
        try:
            return run(context)
        except Exception as exc:  # an executor's crash must not kill the agent
            logger.exception("job %s: the %s executor crashed", job.id, job.kind)
            log(f"\n[bastion-agent] the {job.kind} executor crashed: {exc!r}\n")
            return JobOutcome(exit_status=1, signal_reason="process_run_error")


def upload_artifacts(
    client: AgentClient, job: AcceptedJob, workdir: Path, log: Callable[[str], None]
) -> int:
    """Upload the files of ``payload["artifact_paths"]`` (globs relative to the working
    directory), whatever the exit status. Returns how many files matched."""
    patterns = job.payload.get("artifact_paths") or []
    if not isinstance(patterns, list):
        return 0
    root = workdir.resolve()
    done: set[str] = set()
    for pattern in [p for p in patterns if isinstance(p, str)][:MAX_ARTIFACT_PATTERNS]:
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            log(f"[bastion-agent] artifact path {pattern!r} must stay inside the job: skipped\n")
            continue
        for file in sorted(workdir.glob(pattern))[:MAX_ARTIFACTS]:
            relative = file.relative_to(workdir).as_posix()
            if relative in done or file.is_symlink() or not file.is_file():
                continue
            if not file.resolve().is_relative_to(root):
                continue
            done.add(relative)
            size = file.stat().st_size
            if size > MAX_ARTIFACT_BYTES:
                log(
                    f"[bastion-agent] artifact {relative} is {size} bytes, over the limit: skipped\n"
                )
                continue
            try:
                client.upload_artifact(job, relative, file.read_bytes())
            except (Refused, Unavailable) as exc:
                log(f"[bastion-agent] artifact {relative} was not uploaded: {exc}\n")
            else:
                log(f"[bastion-agent] uploaded artifact {relative} ({size} bytes)\n")
    return len(done)
