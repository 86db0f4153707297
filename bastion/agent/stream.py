"""Log streaming and cancel checks for one running job."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from bastion.agent.client import AcceptedJob, AgentApiError, AgentClient, LogChunk, Unauthorized
from bastion.core.redaction import redact_text

logger = logging.getLogger("bastion.agent")

# Env names whose values are redacted from job output even when the job does not declare them
# (issue 6: *_TOKEN, *_SECRET, *_PASSWORD, *_KEY, ...). Plain *_KEY spares Bastion's own
# variables (BUILDKITE_STEP_KEY, BASTION_STEP_KEY), whose values are step keys: masking them
# would blank ordinary words all over the log; their *_API_KEY, *_PRIVATE_KEY, ... still count.
SECRET_NAME = re.compile(
    r"(?i)(?:.*(?:_PASSWORD|_SECRET|_TOKEN|_PRIVATE_KEY|_SSH_KEY|_ACCESS_KEY|_SECRET_KEY"
    r"|_CONNECTION_STRING|_API_KEY)|(?!BUILDKITE_|BASTION_).*_KEY)$"
)
# Values a job asks the agent to redact from its log (one JSON string a line), e.g. the
# secrets `bastion secret get` printed; the file sits in a directory private to the job's run.
REDACTIONS_ENV = "BASTION_REDACTIONS_FILE"
REDACTIONS_FILE = "redactions.jsonl"
MAX_REDACTIONS_BYTES = 1024 * 1024
FLUSH_S = 0.5
# A partial line is held back for one flush at most, and never beyond this size.
MAX_HELD_CHARS = 64 * 1024
CHUNK_CHARS = 256 * 1024


def secret_values(payload_env: dict[str, str], declared: Iterable[str]) -> list[str]:
    names = set(declared) | {name for name in payload_env if SECRET_NAME.match(name)}
    return [payload_env[name] for name in names if payload_env.get(name)]


class LogStreamer:
    """Buffers output and uploads it in ordered chunks about every half second, redacted."""

    def __init__(
        self,
        client: AgentClient,
        job: AcceptedJob,
        secrets: list[str],
        redactions: Path | None = None,
        *,
        hold_last: bool = False,
    ) -> None:
        self.client = client
        self.job = job
        self.secrets = secrets
        self.redactions = redactions
        # The final flush keeps its last chunk (redacted, numbered) in ``last_chunk`` instead of
        # uploading it, for the agent to send with /finish: one request less per job.
        self.hold_last = hold_last
        self.last_chunk: LogChunk | None = None
        self._redactions_read = 0
        self.seq = 0
        self.failed_chunks = 0
        # The server truncated the log at its cap: later output is read (the job never blocks
        # on a full pipe) but no longer uploaded.
        self.truncated = False
        self._buffer: list[str] = []
        self._held = False
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{job.id}", daemon=True)

    def __enter__(self) -> LogStreamer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=60)
        self.flush(final=True)

    def write(self, text: str) -> None:
        if text:
            with self._lock:
                self._buffer.append(text)

    def _take(self, final: bool) -> str:
        with self._lock:
            text = "".join(self._buffer)
            self._buffer.clear()
            # A partial line waits one flush for its end (so a secret printed in two writes is
            # still redacted whole), then goes anyway: progress output without newlines shows.
            whole = final or self._held or len(text) > MAX_HELD_CHARS
            cut = len(text) if whole else text.rfind("\n") + 1
            self._held = cut < len(text)
            if self._held:
                self._buffer.append(text[cut:])
            return text[:cut]

    def _read_redactions(self) -> None:
        """Add the values the job appended to its redactions file since the last look."""
        if self.redactions is None:
            return
        try:
            with self.redactions.open("rb") as handle:
                handle.seek(self._redactions_read)
                data = handle.read(MAX_REDACTIONS_BYTES - self._redactions_read)
        except OSError:
            return  # not written (yet)
        complete = data[: data.rfind(b"\n") + 1]
        self._redactions_read += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, str) and value and value not in self.secrets:
                self.secrets.append(value)

    def flush(self, final: bool = False) -> None:
        with self._send_lock:
            self._read_redactions()
            text = self._take(final)
            pieces = [
                text[start : start + CHUNK_CHARS] for start in range(0, len(text), CHUNK_CHARS)
            ]
            last = pieces.pop() if final and self.hold_last and pieces else None
            for piece in pieces:
                if self.truncated:
                    return
                self._send(redact_text(piece, self.secrets))
            if last is not None and not self.truncated:
                self.last_chunk = LogChunk(self._next_seq(), redact_text(last, self.secrets))

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    def _send(self, data: str) -> None:
        seq = self._next_seq()
        try:
            self.truncated = self.client.log(self.job, seq, data)
        except Unauthorized:
            raise
        except AgentApiError as exc:
            self.failed_chunks += 1
            logger.warning("job %s: log chunk %s was not stored: %s", self.job.id, seq, exc)

    def _run(self) -> None:
        for _ in range(10_000_000):  # bounded; ends when the job ends
            if self._done.wait(FLUSH_S):
                return
            try:
                self.flush()
            except Unauthorized:
                logger.warning(
                    "job %s: the job token was refused; log streaming stops", self.job.id
                )
                return


class CancelWatch:
    """Asks the server whether the job must stop, at most once per interval."""

    def __init__(
        self,
        client: AgentClient,
        job: AcceptedJob,
        interval_s: float,
        abort: threading.Event,
    ) -> None:
        self.client = client
        self.job = job
        self.interval_s = interval_s
        self.abort = abort
        self._checked_at = time.monotonic()  # the job was just accepted: first check in 1 interval
        self.reason: str | None = None

    def __call__(self) -> str | None:
        if self.reason is None and self.abort.is_set():
            self.reason = "agent_stop"
        now = time.monotonic()
        if self.reason is None and now - self._checked_at >= self.interval_s:
            self._checked_at = now
            try:
                status = self.client.status(self.job)
            except Unauthorized:
                self.reason = "canceled"  # the job token is no longer valid: stop the work
            except AgentApiError as exc:
                logger.warning("job %s: status check failed: %s", self.job.id, exc)
            else:
                if status.cancel_requested:
                    self.reason = status.cancel_reason or "canceled"
        return self.reason
