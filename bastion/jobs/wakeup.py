"""Wake long-polling agents of this process as soon as a job becomes ready.

A waiting long poll looks for work every ``LONG_POLL_CHECK_S`` (one indexed query); when a job is
created in the same process it need not wait for its next look: ``ring()`` (run after the commit
that made the job visible) wakes every waiting poll at once. Polls waiting in other processes
still find the job at their next look, so correctness never depends on the bell.
"""

from __future__ import annotations

import threading

_condition = threading.Condition()
_generation = 0


def generation() -> int:
    """A counter that ``ring`` increments; take it before looking for work."""
    with _condition:
        return _generation


def ring() -> None:
    global _generation
    with _condition:
        _generation += 1
        _condition.notify_all()


def wait(seen: int, timeout_s: float) -> bool:
    """Wait until the bell rang since ``seen`` was taken, at most ``timeout_s``; True if it rang."""
    with _condition:
        return _condition.wait_for(lambda: _generation != seen, timeout=timeout_s)
