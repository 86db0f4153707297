"""Advance builds off the request path: one background thread per web process.

An agent's ``finish`` used to advance the job's build inside the request, so every agent waited
for the scheduler (the whole build's rows) before it could poll for its next job. In a server
process (``bastion.wsgi`` calls ``enable()``) the finish only hands the build id to this thread
and returns; the thread advances each waiting build once, however many of its jobs finished
meanwhile (coalescing), so a fan-out of hundreds of jobs costs a few advances, not hundreds.

Nothing is lost when the process dies with ids still waiting: the scheduler's periodic sweep
finds builds with a finished job whose step still runs and advances them (``active_build_ids``).
Elsewhere (tests, the CLI, the scheduler process) builds are advanced inline, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

# A bound on the thread's life in cycles (each waits at most IDLE_WAIT_S): ~years.
MAX_CYCLES = 100_000_000
IDLE_WAIT_S = 5.0


class Advancer:
    """A set of build ids waiting to be advanced and the thread that advances them."""

    def __init__(self, advance: Callable[[Iterable[int]], None]) -> None:
        self._advance = advance
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.enabled = False

    def submit(self, build_ids: Iterable[int]) -> None:
        """Advance these builds soon (in the thread), or now when the thread is not enabled."""
        ids = set(build_ids)
        if not ids:
            return
        if not self.enabled:
            self._advance(ids)
            return
        with self._lock:
            self._pending |= ids
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pipelines-advancer", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _take(self) -> set[int]:
        with self._lock:
            ids, self._pending = self._pending, set()
            self._wake.clear()
            return ids

    def _run(self) -> None:
        for _ in range(MAX_CYCLES):
            self._wake.wait(IDLE_WAIT_S)
            ids = self._take()
            if not ids:
                continue
            close_old_connections()
            try:
                self._advance(ids)
            except Exception:
                # advance_builds isolates each build; this is the database itself failing.
                # The scheduler's sweep advances these builds later.
                logger.exception("advancing builds %s failed", sorted(ids))
                connection.close()

    def drain(self) -> set[int]:
        """The ids still waiting (for tests and shutdown reports); empties the set."""
        return self._take()


def _advance_builds(build_ids: Iterable[int]) -> None:
    from bastion.pipelines.scheduler import advance_builds

    advance_builds(build_ids)


advancer = Advancer(_advance_builds)


def enable() -> None:
    """Advance builds in a background thread of this process (web servers call this)."""
    advancer.enabled = True
