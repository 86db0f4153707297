"""The ingest journal: an accepted envelope is on disk, fsynced, before its 200; the process's
writer thread (``bastion.errors.committer``) groups and stores it a moment later.

Each web process appends to its own segment files in ``DATA_DIR/ingest-journal``, so processes
never wait for one another to make a request durable; concurrent requests of one process share
one ``fdatasync`` (group commit on a file). A process holds an exclusive ``flock`` on its
segments for as long as it lives: a segment nobody holds belongs to a process that died, and any
live process replays it (``recover_orphans``). A checkpoint beside each segment says how far the
writer has stored it, so a replay starts there; events are stored once per event id, so records
replayed twice (a checkpoint lost in a power cut) do not duplicate events.

Record format: 4-byte big-endian length, 4-byte CRC32 of the body, body (JSON). A torn or
corrupt record ends a segment: it was never fsynced, so its request never got a 200.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.errors import jsoncodec
from bastion.errors.envelope import Item
from bastion.errors.store import PendingWrite, PreparedEvent

logger = logging.getLogger(__name__)

HEADER = struct.Struct(">II")
CHECKPOINT = struct.Struct(">Q")
SEGMENT_SUFFIX = ".journal"
CHECKPOINT_SUFFIX = ".done"
REJECTED_SUFFIX = ".rejected"
SEGMENT_BYTES = 64 * 1024 * 1024
MAX_RECORD_BYTES = 256 * 1024 * 1024
ABANDONED_AFTER_S = 60.0


# --- records ------------------------------------------------------------------------------------


def encode_write(write: PendingWrite) -> bytes:
    """One line of JSON for everything but the event's data, then its data's JSON text (which
    ingest has already encoded; compact JSON holds no raw newline)."""
    event = write.event
    body: dict[str, Any] = {
        "project_id": write.project_id,
        "received_at": write.received_at.isoformat(),
        "event": None
        if event is None
        else {
            "event_id": event.event_id.hex,
            "grouping_hash": event.grouping_hash,
            "timestamp": event.timestamp.isoformat(),
            "user_hash": event.user_hash,
            "suppressed_by": event.suppressed_by,
        },
        "attachment_event_id": write.attachment_event_id.hex if write.attachment_event_id else None,
        "attachments": [
            {"headers": item.headers, "payload": base64.b64encode(item.payload).decode()}
            for item in write.attachments
        ],
        "counts": write.counts,
    }
    head = jsoncodec.dumps_text(body)
    if event is None:
        return head.encode()
    return f"{head}\n{event.data_json or encode_data(event.data)}".encode()


def encode_data(data: dict[str, Any]) -> str:
    return jsoncodec.dumps_text(data)


def decode_write(record: bytes) -> PendingWrite:
    head, _, data_json = record.partition(b"\n")
    body = jsoncodec.loads(head)
    event = body["event"]
    attachment_event_id = body["attachment_event_id"]
    text = data_json.decode()
    return PendingWrite(
        project_id=int(body["project_id"]),
        received_at=datetime.fromisoformat(body["received_at"]),
        event=None
        if event is None
        else PreparedEvent(
            event_id=uuid.UUID(event["event_id"]),
            data=jsoncodec.loads(data_json),
            grouping_hash=event["grouping_hash"],
            timestamp=datetime.fromisoformat(event["timestamp"]),
            user_hash=event["user_hash"],
            suppressed_by=event["suppressed_by"],
            data_json=text,
        ),
        attachment_event_id=uuid.UUID(attachment_event_id) if attachment_event_id else None,
        attachments=[
            Item(item["headers"], base64.b64decode(item["payload"])) for item in body["attachments"]
        ],
        counts={str(k): int(v) for k, v in body["counts"].items()},
    )


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def read_records(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(end offset, body) of each whole, intact record from ``start`` on."""
    with path.open("rb") as handle:
        handle.seek(start)
        offset = start
        while True:
            header = handle.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            length, crc = HEADER.unpack(header)
            if length > MAX_RECORD_BYTES:
                logger.warning("%s: corrupt record at %d; the rest is ignored", path, offset)
                return
            body = handle.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                return  # torn tail: never fsynced, never acknowledged
            offset += HEADER.size + length
            yield offset, body


def read_checkpoint(segment: Path) -> int:
    try:
        data = segment.with_name(segment.name + CHECKPOINT_SUFFIX).read_bytes()
    except FileNotFoundError:
        return 0
    return CHECKPOINT.unpack(data)[0] if len(data) == CHECKPOINT.size else 0


# --- segments -----------------------------------------------------------------------------------


@dataclass(eq=False)
class Segment:
    path: Path
    fd: int
    checkpoint_fd: int
    written: int = 0
    synced: int = 0
    committed: int = 0
    sealed: bool = False  # no more appends (rotated)
    closed: bool = False
    sync_lock: threading.Lock = field(default_factory=threading.Lock)

    def retire(self) -> None:
        """Delete a segment whose records are all stored."""
        with self.sync_lock:  # no fsync of this fd is running or will start
            if self.closed:
                return
            self.closed = True
            for name in (self.path, self.path.with_name(self.path.name + CHECKPOINT_SUFFIX)):
                name.unlink(missing_ok=True)
            os.close(self.checkpoint_fd)
            os.close(self.fd)


@dataclass(frozen=True)
class Position:
    """Where a record ends: once stored, the segment's checkpoint moves here."""

    segment: Segment
    end: int


class Journal:
    """This process's segments. ``append`` returns once the record is durable."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._segment = self._open_segment()
        self._sealed: list[Segment] = []
        self._closed = False

    def _open_segment(self) -> Segment:
        # Created under a temporary name and locked before it is renamed into view, so that no
        # other process's recovery ever sees it unlocked.
        name = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        temporary = self.directory / f".{name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = self.directory / f"{name}{SEGMENT_SUFFIX}"
        os.rename(temporary, path)
        checkpoint = path.with_name(path.name + CHECKPOINT_SUFFIX)
        checkpoint_fd = os.open(checkpoint, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        _fsync_directory(self.directory)
        return Segment(path, fd, checkpoint_fd)

    def owns(self, path: Path) -> bool:
        with self._lock:
            return any(s.path == path for s in [self._segment, *self._sealed])

    def append(self, write: PendingWrite, enqueue: Callable[[Position], None]) -> None:
        """Write the record, hand its position to ``enqueue`` (in file order), return once it
        is on disk."""
        record = frame(encode_write(write))
        with self._lock:
            if self._closed:  # the writer stopped (shutdown): the client gets a 503 and resends
                raise OSError("the ingest journal is closed")
            segment = self._segment
            _write_all(segment.fd, record)
            segment.written += len(record)
            position = Position(segment, segment.written)
            enqueue(position)
            if segment.written >= self.segment_bytes:
                segment.sealed = True
                self._sealed.append(segment)
                self._segment = self._open_segment()
        self._sync(position)

    @staticmethod
    def _sync(position: Position) -> None:
        segment = position.segment
        with segment.sync_lock:
            if segment.closed or segment.synced >= position.end:
                return  # stored already, or made durable by another request's fsync
            target = segment.written  # every byte written so far is covered by this fsync
            os.fdatasync(segment.fd)
            segment.synced = target

    def stored(self, position: Position) -> None:
        """Everything up to ``position`` is in the database."""
        segment = position.segment
        segment.committed = position.end
        if not segment.closed:
            os.pwrite(segment.checkpoint_fd, CHECKPOINT.pack(position.end), 0)
        if segment.sealed and segment.committed >= segment.written:
            segment.retire()
            with self._lock:
                self._sealed = [s for s in self._sealed if s is not segment]

    def close(self) -> None:
        """After the writer stored everything: delete this process's segments."""
        with self._lock:
            self._closed = True
            segments = [*self._sealed, self._segment]
            self._sealed = []
        for segment in segments:
            if segment.committed >= segment.written:
                segment.retire()

    def reject(self, write: PendingWrite, reason: str) -> Path:
        """Keep a write the database refused, for an operator to look at and replay."""
        path = self.directory / f"{os.getpid()}{REJECTED_SUFFIX}"
        with self._lock, path.open("ab") as handle:
            handle.write(frame(encode_write(write)))
            handle.flush()
            os.fsync(handle.fileno())
        logger.error(
            "ingest: a write was refused by the database (%s); kept in %s "
            "(rename it to <name>.journal to replay it once the cause is fixed)",
            reason,
            path,
        )
        return path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    for _ in range(len(data) + 1):  # each write makes progress or raises
        if not view:
            return
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- recovery -----------------------------------------------------------------------------------


def orphans(directory: Path, journal: Journal | None) -> Iterator[tuple[Path, int]]:
    """Segments of processes that died, each locked (by the returned fd) while it is replayed."""
    if not directory.is_dir():
        return
    _remove_abandoned_segments(directory)
    for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
        if journal is not None and journal.owns(path):
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Replayed and deleted by another process between our open and our lock?
            if os.fstat(fd).st_ino != path.stat().st_ino:
                raise FileNotFoundError(path)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            continue
        try:
            yield path, fd
        finally:
            os.close(fd)


def _remove_abandoned_segments(directory: Path) -> None:
    """Segments a process created and died before renaming into view: empty, never written."""
    for path in directory.glob(".*.new"):
        try:
            if time.time() - path.stat().st_mtime < ABANDONED_AFTER_S:
                continue  # maybe being created right now, not yet locked
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
        except BlockingIOError:
            pass  # being created right now
        finally:
            os.close(fd)


def replay(path: Path, batch_size: int) -> Iterator[list[tuple[int, PendingWrite]]]:
    """The records of an orphaned segment after its checkpoint, in batches of (end, write)."""
    batch: list[tuple[int, PendingWrite]] = []
    for end, body in read_records(path, read_checkpoint(path)):
        try:
            batch.append((end, decode_write(body)))
        except (ValueError, KeyError, TypeError):
            logger.error("%s: an unreadable record at %d was skipped", path, end)
            continue
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def save_checkpoint(path: Path, end: int) -> None:
    path.with_name(path.name + CHECKPOINT_SUFFIX).write_bytes(CHECKPOINT.pack(end))


def forget(path: Path) -> None:
    for name in (path, path.with_name(path.name + CHECKPOINT_SUFFIX)):
        name.unlink(missing_ok=True)
