"""Group commit: request threads of one process hand their writes to one writer thread, which
stores whatever is waiting in one transaction and wakes each request after the commit.

Every request still gets its 200 only once its data is committed; under load, one commit (one
fsync on SQLite, one WAL flush on PostgreSQL) covers many events instead of one, and the ORM
work is done per batch, not per event. With no concurrency a batch is one write, so latency is
that of a direct write plus a thread hand-off.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection

from bastion.errors.store import PendingWrite, store_batch, store_each

logger = logging.getLogger(__name__)

MAX_BATCH = 64
WAIT_SECONDS = 30.0


@contextmanager
def _writer_lock() -> Iterator[None]:
    """On SQLite, one writer at a time across processes, by a blocking file lock.

    SQLite itself makes a second writer poll with growing sleeps (busy_timeout); measured with
    two web processes, that halved throughput. A flock wakes the next writer the moment the
    lock is released, and the waiting writer's batch grows meanwhile.
    """
    if connection.vendor != "sqlite":
        yield
        return
    handle = _lock_file(Path(settings.DATA_DIR) / "errors-ingest.lock")
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)


_lock_files: dict[tuple[int, Path], IO[str]] = {}


def _lock_file(path: Path) -> IO[str]:
    """The lock file, opened once per process (not once per batch)."""
    key = (os.getpid(), path)
    handle = _lock_files.get(key)
    if handle is None or handle.closed:
        handle = _lock_files[key] = path.open("a")
    return handle


class CommitTimeout(Exception):
    """The writer did not confirm the write in time (503; the client may resend)."""


@dataclass
class _Ticket:
    write: PendingWrite
    done: threading.Event = field(default_factory=threading.Event)
    result: bool | BaseException | None = None


class GroupCommitter:
    def __init__(self, enabled: bool, max_batch: int = MAX_BATCH) -> None:
        self.enabled = enabled
        self.max_batch = max_batch
        self._queue: queue.Queue[_Ticket | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, write: PendingWrite) -> bool:
        """Store the write (in a batch when enabled); True if a new event was stored."""
        if not self.enabled:
            return store_batch([write])[0]
        self._ensure_thread()
        ticket = _Ticket(write)
        self._queue.put(ticket)
        if not ticket.done.wait(WAIT_SECONDS):
            raise CommitTimeout("the write was not committed in time")
        if isinstance(ticket.result, BaseException):
            raise ticket.result
        return bool(ticket.result)

    def _ensure_thread(self) -> None:
        # After a fork (gunicorn workers), the parent's thread does not exist in the child.
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._queue = queue.Queue()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="errors-group-commit", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the writer thread (it closes its database connection); the next submit starts
        a new one. For tests and orderly shutdown."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def _take_batch(self, first: _Ticket) -> list[_Ticket]:
        """``first`` and whatever else is waiting, up to ``max_batch`` writes."""
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        try:
            while (first := self._queue.get()) is not None:
                # The batch is drained only once this process may write: while another
                # process holds the writer lock (SQLite), the requests arriving here join it.
                with _writer_lock():
                    batch = self._take_batch(first)
                    results = self._store([ticket.write for ticket in batch])
                for ticket, result in zip(batch, results, strict=True):
                    ticket.result = result
                    ticket.done.set()
        finally:
            connection.close()

    def _store(self, writes: Sequence[PendingWrite]) -> list[bool | BaseException]:
        try:
            return list(store_batch(writes))
        except Exception:  # noqa: BLE001 - retried one by one, each error goes to its request
            logger.warning("batch of %d writes failed; storing them one by one", len(writes))
            connection.close_if_unusable_or_obsolete()
            return store_each(writes)
