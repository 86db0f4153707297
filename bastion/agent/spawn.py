"""``bastion agent start --spawn N``: N agents from one command, like Buildkite's ``--spawn``.

Each agent is a child ``bastion agent start`` process with its own registration (named
``NAME-1`` ... ``NAME-N``), so a crash or a stuck job in one never stops the others. The parent
only supervises: it forwards stop signals (the first lets running jobs finish, the second cancels
them, as for a single agent) and exits with the worst exit status once every child has exited.
Children run in their own sessions so that Ctrl-C in a terminal reaches them once, through the
parent, instead of twice (which an agent would take as "cancel the running job").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

MAX_SPAWN = 64


def _stop_with_parent() -> None:
    """On Linux, a child gets SIGTERM (a graceful stop) if the supervising parent dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def child_names(base: str, count: int) -> list[str]:
    prefix = base or socket.gethostname()
    return [f"{prefix}-{n}" for n in range(1, count + 1)]


def run_spawned(agent_args: Sequence[str], names: Sequence[str], token: str) -> int:
    """Run one child agent per name with ``agent_args`` (never the token: it goes through the
    environment, not argv, where any local user could read it); the worst exit status."""
    env = {**os.environ, "BASTION_AGENT_TOKEN": token}
    command = [sys.executable, "-m", "bastion", "agent", "start", *agent_args]
    children = [
        subprocess.Popen(
            [*command, "--name", name],
            env=env,
            start_new_session=True,
            preexec_fn=_stop_with_parent,  # the parent is single-threaded here
        )
        for name in names
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)
