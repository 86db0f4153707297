"""Executors by job kind: the agent looks a job's kind up here and runs what it finds.

``command`` is built in. Other kinds (``scan``, ``browser``, ``access-matrix``) are registered by
the modules named in ``KIND_MODULES``, with ``@executor("scan")``; a kind with no executor fails
the job with a clear log line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass(frozen=True)
class JobOutcome:
    exit_status: int
    signal_reason: str = ""


@dataclass(frozen=True)
class JobContext:
    """What an executor gets: the job, a log sink and a cancel check it must call often."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    timeout_s: int | None
    workdir: Path
    env: dict[str, str]
    # Append text to the job's log (redacted and streamed in ordered chunks by the agent).
    log: Callable[[str], None]
    # The reason the job must stop ("canceled", "timed_out", "agent_stop"), or None. Cheap to call:
    # it asks the server at most once per job-status interval.
    cancel_requested: Callable[[], str | None]
    # Seconds between SIGTERM and SIGKILL when a job is canceled.
    grace_s: float
    # The agent's own hooks directory (``--hooks-path``), never set by the server.
    hooks_path: Path | None = None
    # The cluster's verification key (``--verification-key``): unsigned or tampered command
    # steps are refused before anything runs.
    verification_key: Ed25519PublicKey | None = None
    # The agent's own tags (``--tags``, queue included): a signed step must target them.
    agent_tags: dict[str, str] = field(default_factory=dict)


Executor = Callable[[JobContext], JobOutcome]
EXECUTORS: dict[str, Executor] = {}


def executor(kind: str) -> Callable[[Executor], Executor]:
    def register(function: Executor) -> Executor:
        EXECUTORS[kind] = function
        return function

    return register


# Where each kind's executor lives; importing the module registers it. A module that does not
# exist yet (its issue is not done) simply means "no executor for this kind".
KIND_MODULES: dict[str, str] = {
    "command": "bastion.agent.command",
    "scan": "bastion.scanning.executor",
    "browser": "bastion.browser.executor",
    "access-matrix": "bastion.browser.executor",
}


def executor_for(kind: str) -> Executor | None:
    if kind not in EXECUTORS and kind in KIND_MODULES:
        try:
            importlib.import_module(KIND_MODULES[kind])
        except ModuleNotFoundError as exc:
            if exc.name is None or not KIND_MODULES[kind].startswith(exc.name):
                raise  # the module exists but one of its own imports is missing: a real bug
    return EXECUTORS.get(kind)
