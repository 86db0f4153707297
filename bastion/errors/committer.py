"""The ingest writer: request threads make their writes durable in this process's journal
(``bastion.errors.journal``) and answer 200; one writer thread per process stores what the
journal holds in batches, one transaction each, a moment later.

The 200 waits for an ``fdatasync`` of the journal (shared by the concurrent requests of the
process), not for the database: grouping and storing happen off the request, in batches of up to
``MAX_BATCH`` writes, so one commit and one round of statements cover hundreds of events. Under
the load of ``bench/ingest.py`` events are grouped well under a second after their 200. When the
writer falls behind by ``MAX_BACKLOG`` writes, requests wait for room (back-pressure, then 503),
so memory stays bounded. Writes the database refuses for good are kept in a ``.rejected`` file
beside the journal, never dropped; while the database is unreachable the writer retries.

Disabled (``BASTION_INGEST_GROUP_COMMIT=false``, what the test suite does), each request stores
its write in its own transaction in the request thread and answers after the commit.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from bastion.errors import journal as journal_files
from bastion.errors.journal import Journal, Position
from bastion.errors.store import PendingWrite, store_batch, store_each

logger = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_BACKLOG = 20_000
WAIT_SECONDS = 30.0
RECOVERY_INTERVAL_S = 30.0
# The writer lets a batch gather for up to this long: storing 150 writes in one transaction costs
# about half the CPU per event of storing 10 (measured with bench/ingest.py), and the request no
# longer waits for the store, only for the journal.
GATHER_S = 0.25
RETRY_DELAYS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
MAX_RETRIES = 17_280  # a day of 5-second retries while the database is unreachable


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
    """The writer is too far behind to take the write in time (503; the client may resend)."""


@dataclass(frozen=True)
class _Entry:
    write: PendingWrite
    position: Position | None  # None: replayed from an orphaned segment


def journal_directory() -> Path:
    return Path(settings.DATA_DIR) / "ingest-journal"


class GroupCommitter:
    def __init__(self, enabled: bool, max_batch: int = MAX_BATCH) -> None:
        self.enabled = enabled
        self.max_batch = max_batch
        self._queue: queue.Queue[_Entry | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._journal: Journal | None = None
        self._pid = 0
        self._idle = threading.Condition()
        self._pending = 0  # appended and not yet stored

    def submit(self, write: PendingWrite) -> bool:
        """Make the write durable (stored at once when disabled). True when accepted; when
        disabled, whether a new event was stored."""
        if not self.enabled:
            return store_batch([write])[0]
        journal = self._ensure_thread()
        self._wait_for_room()
        with self._idle:
            self._pending += 1
        try:
            journal.append(write, lambda position: self._queue.put(_Entry(write, position)))
        except BaseException:
            with self._idle:
                self._pending -= 1
            raise
        return True

    def start(self) -> None:
        """Start the writer now (web servers call this), so segments left by a process that
        died are replayed even before the next event arrives."""
        if self.enabled:
            self._ensure_thread()

    def _wait_for_room(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while self._queue.qsize() >= MAX_BACKLOG:
            if time.monotonic() > deadline:
                raise CommitTimeout("the ingest writer is too far behind")
            time.sleep(0.01)

    def _ensure_thread(self) -> Journal:
        # After a fork (gunicorn workers), the parent's thread and journal are not this
        # process's: the child starts its own.
        with self._lock:
            if (
                self._thread is None
                or not self._thread.is_alive()
                or self._journal is None
                or self._pid != os.getpid()
            ):
                if self._pid != os.getpid() or self._journal is None:
                    self._journal = Journal(journal_directory())
                    self._queue = queue.Queue()
                    self._pending = 0
                    if self._pid == 0:
                        atexit.register(self.stop)
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._journal,), name="errors-writer", daemon=True
                )
                self._thread.start()
            return self._journal

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every accepted write is stored (for tests, benchmarks and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Store what is queued, end the writer thread (it closes its database connection) and
        delete this process's journal segments. The next submit starts afresh."""
        with self._lock:
            thread, self._thread = self._thread, None
            journal = self._journal if self._pid == os.getpid() else None
            if journal is not None:
                self._journal = None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
        if journal is not None and (thread is None or not thread.is_alive()):
            journal.close()

    def recover(self, journal: Journal | None = None) -> int:
        """Store the writes of segments whose process died; the number stored."""
        recovered = 0
        for path, _fd in journal_files.orphans(journal_directory(), journal):
            for batch in journal_files.replay(path, self.max_batch):
                with _writer_lock():
                    self._store_durably([write for _, write in batch], journal)
                journal_files.save_checkpoint(path, batch[-1][0])
                recovered += len(batch)
            journal_files.forget(path)
            logger.info(
                "ingest: replayed %s (%d writes) from a process that ended", path.name, recovered
            )
        return recovered

    def _take_batch(self, first: _Entry) -> list[_Entry]:
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

    def _run(self, journal: Journal) -> None:
        recovered_at = 0.0
        try:
            for _ in range(10**12):  # bounded; ends on stop()
                if time.monotonic() - recovered_at >= RECOVERY_INTERVAL_S:
                    recovered_at = time.monotonic()
                    self._recover_quietly(journal)
                try:
                    first = self._queue.get(timeout=RECOVERY_INTERVAL_S)
                except queue.Empty:
                    continue
                if first is None:
                    return
                self._gather()
                # The batch is drained only once this process may write: while another
                # process holds the writer lock (SQLite), the writes arriving here join it.
                with _writer_lock():
                    batch = self._take_batch(first)
                    self._store_durably([entry.write for entry in batch], journal)
                last = batch[-1].position
                if last is not None:
                    journal.stored(last)
                with self._idle:
                    self._pending -= len(batch)
                    if self._pending <= 0:
                        self._idle.notify_all()
        finally:
            connection.close()

    def _gather(self) -> None:
        deadline = time.monotonic() + GATHER_S
        while self._queue.qsize() < self.max_batch - 1 and time.monotonic() < deadline:
            time.sleep(0.01)

    def _recover_quietly(self, journal: Journal) -> None:
        try:
            self.recover(journal)
        except Exception:  # retried at the next interval; the segment stays
            logger.exception("ingest: replaying an orphaned journal failed")
            connection.close_if_unusable_or_obsolete()

    def _store_durably(self, writes: Sequence[PendingWrite], journal: Journal | None) -> None:
        """Store the writes; retry while the database is unreachable; keep refused ones."""
        for attempt in range(MAX_RETRIES):
            try:
                store_batch(writes)
                return
            except (OperationalError, InterfaceError):
                # Unreachable or locked: the same batch again, after a pause.
                connection.close()
                time.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
            except DatabaseError:
                break
        logger.warning("batch of %d writes failed; storing them one by one", len(writes))
        connection.close_if_unusable_or_obsolete()
        for write, result in zip(writes, store_each(writes), strict=True):
            if isinstance(result, BaseException):
                if journal is None:
                    journal = Journal(journal_directory())
                journal.reject(write, repr(result))
