"""Job logs: ordered, idempotent chunks with a size cap and a server-side redaction pass."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from bastion.core import crypto
from bastion.core.redaction import redact_text
from bastion.jobs.errors import JobConflict
from bastion.jobs.models import Job, JobLogChunk, JobState

logger = logging.getLogger(__name__)

# Defaults next to the app; a deployment may override them in Django settings.
DEFAULT_LOG_MAX_BYTES = 8 * 1024 * 1024
MAX_CHUNK_BYTES = 1024 * 1024
TRUNCATION_NOTICE = "\n[bastion: log truncated, the job's log reached its size limit]\n"


def log_max_bytes() -> int:
    return int(getattr(settings, "BASTION_JOB_LOG_MAX_BYTES", DEFAULT_LOG_MAX_BYTES))


def payload_env(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload["env"]`` plus the variables stored encrypted in ``payload["env_encrypted"]``
    (a JSON object under bastion.core.crypto: secrets never sit in the job table in clear)."""
    env = payload.get("env") or {}
    env = dict(env) if isinstance(env, dict) else {}
    sealed = payload.get("env_encrypted")
    if isinstance(sealed, str) and sealed:
        try:
            opened = json.loads(crypto.decrypt(sealed))
        except (crypto.DecryptionError, ValueError):
            logger.warning("a job's encrypted env could not be decrypted (SECRET_KEY changed?)")
            opened = {}
        if isinstance(opened, dict):
            env.update({str(k): str(v) for k, v in opened.items()})
    return env


def _opened(sealed: Any) -> Any:
    if not isinstance(sealed, str) or not sealed:
        return None
    try:
        return json.loads(crypto.decrypt(sealed))
    except (crypto.DecryptionError, ValueError):
        logger.warning("a job's encrypted values could not be decrypted (SECRET_KEY changed?)")
        return None


def with_sealed_env(payload: dict[str, Any], extra: dict[str, str]) -> dict[str, Any]:
    """The payload with ``extra`` added to its encrypted env and named secret (redacted)."""
    opened = _opened(payload.get("env_encrypted"))
    env = dict(opened) if isinstance(opened, dict) else {}
    env.update(extra)
    names = payload.get("secret_env")
    declared = set(names) if isinstance(names, list) else set()
    return {
        **payload,
        "env_encrypted": crypto.encrypt(json.dumps(env)),
        "secret_env": sorted(declared | set(extra)),
    }


def with_redacted(payload: dict[str, Any], value: str) -> dict[str, Any]:
    """The payload with one more value to redact from the job's log (e.g. a secret the job
    read with ``bastion secret get``), kept encrypted."""
    opened = _opened(payload.get("redact_encrypted"))
    values = [str(v) for v in opened] if isinstance(opened, list) else []
    if value not in values:
        values.append(value)
    return {**payload, "redact_encrypted": crypto.encrypt(json.dumps(values))}


def job_secrets(job: Job) -> list[str]:
    """Values of the env variables the job's payload declares secret (``payload["secret_env"]``)
    and the other values it was given to redact (``payload["redact_encrypted"]``)."""
    payload = job.payload if isinstance(job.payload, dict) else {}
    names = payload.get("secret_env") or []
    env = payload_env(payload)
    if not isinstance(names, list) or not isinstance(env, dict):
        return []
    found = [str(env[name]) for name in names if isinstance(name, str) and env.get(name)]
    extra = _opened(payload.get("redact_encrypted"))
    return found + ([str(v) for v in extra] if isinstance(extra, list) else [])


@dataclass(frozen=True)
class LogChunk:
    """One chunk of a job's log as an agent sends it: its place in the log and its text."""

    seq: int
    data: str


@dataclass(frozen=True)
class LogAppend:
    stored: bool  # False for a retried chunk (or one past the cap): nothing changed
    log_bytes: int
    truncated: bool


def append_log(job: Job, seq: int, data: str) -> LogAppend:
    """Store chunk ``seq`` of the job's log once; a retry of the same seq changes nothing."""
    if seq < 0:
        raise JobConflict("Log chunk sequence numbers start at 0.")
    if len(data) > MAX_CHUNK_BYTES:
        raise JobConflict(f"A log chunk may hold at most {MAX_CHUNK_BYTES} characters.")
    with transaction.atomic():
        row = (
            Job.objects.select_for_update()
            .values("state", "log_bytes", "log_truncated", "payload")
            .get(pk=job.pk)
        )
        if JobLogChunk.objects.filter(job_id=job.pk, seq=seq).exists():
            return LogAppend(False, row["log_bytes"], row["log_truncated"])
        if row["state"] not in (JobState.ACCEPTED, JobState.RUNNING):
            raise JobConflict(f"The job takes no more log: it is {row['state']}.")
        if row["log_truncated"]:
            return LogAppend(False, row["log_bytes"], True)
        job.payload = row["payload"]
        text = redact_text(data.replace("\x00", ""), job_secrets(job))
        raw = text.encode()
        room = log_max_bytes() - row["log_bytes"]
        truncated = len(raw) > room
        if truncated:
            text = raw[: max(room, 0)].decode(errors="ignore") + TRUNCATION_NOTICE
            raw = text.encode()
        try:
            with transaction.atomic():
                JobLogChunk.objects.create(job_id=job.pk, seq=seq, data=text)
        except IntegrityError:
            return LogAppend(False, row["log_bytes"], row["log_truncated"])
        Job.objects.filter(pk=job.pk).update(
            log_bytes=F("log_bytes") + len(raw), log_truncated=truncated
        )
    return LogAppend(True, row["log_bytes"] + len(raw), truncated)


def read_log(job: Job, after_seq: int = -1) -> list[tuple[int, str]]:
    """The job's log chunks in order, optionally only those after a sequence number."""
    chunks = JobLogChunk.objects.filter(job_id=job.pk, seq__gt=after_seq).order_by("seq")
    return list(chunks.values_list("seq", "data"))
