"""The ingest journal: a write is on disk before its 200, stored by the writer, and replayed
by a live process when the process that accepted it died first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection

from bastion.errors import journal
from bastion.errors.committer import GroupCommitter, journal_directory
from bastion.errors.envelope import Item
from bastion.errors.ingest import prepare_event
from bastion.errors.models import Attachment, Event, Issue, ItemCount
from bastion.errors.store import PendingWrite
from tests.errors.conftest import Setup
from tests.errors.helpers import event_payload

ROOT = Path(__file__).resolve().parents[2]


def _write(setup: Setup, kind: str, user: str = "u1") -> PendingWrite:
    now = datetime.now(tz=UTC)
    payload = event_payload(user={"id": user}, exception={"values": [{"type": kind, "value": "x"}]})
    event = prepare_event(json.dumps(payload).encode(), uuid.uuid4(), setup.key, now, None)
    return PendingWrite(project_id=setup.project.pk, received_at=now, event=event)


@pytest.fixture
def data_dir(settings: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    settings.DATA_DIR = str(tmp_path)  # type: ignore[attr-defined]
    yield tmp_path


def test_a_record_reads_back_as_the_write_it_was(setup: Setup) -> None:
    write = _write(setup, "RoundTrip")
    write.attachments = [Item({"type": "attachment", "filename": "a.bin"}, bytes(range(256)))]
    write.counts = {"session": 3}
    back = journal.decode_write(journal.encode_write(write))
    assert back == write


TRICKY_EXTRA = {
    "text": "é € \U0001f600 \U0010ffff \u2028 a\x00b",
    "lone surrogate": "\ud800",
    "numbers": [2**70, -(2**63) - 1, 18446744073709551615, 0.1, -0.0],
    "nested": {"é": [{"k": [None, True]}]},
}


def _tricky_write(setup: Setup, extra: dict[str, object]) -> PendingWrite:
    now = datetime.now(tz=UTC)
    payload = event_payload(extra=extra, message="caf\u00e9 \U0001f4a5")
    event = prepare_event(json.dumps(payload).encode(), uuid.uuid4(), setup.key, now, None)
    return PendingWrite(project_id=setup.project.pk, received_at=now, event=event)


@pytest.mark.parametrize(
    "extra",
    [{k: v} for k, v in TRICKY_EXTRA.items()] + [TRICKY_EXTRA],
    ids=[*TRICKY_EXTRA, "all"],
)
def test_any_json_text_reads_back_as_it_was_written(setup: Setup, extra: dict[str, object]) -> None:
    write = _tricky_write(setup, extra)
    write.attachments = [Item({"type": "attachment", "filename": "résumé 📎.txt"}, b"\xff")]
    assert write.event is not None
    record = journal.encode_write(write)
    back = journal.decode_write(record)
    assert back == write
    assert back.event is not None and back.event.data_json == write.event.data_json
    assert json.dumps(back.event.data) == json.dumps(write.event.data)  # 2**70 stays an int


def test_nan_is_journaled_as_the_null_it_is_stored_as(setup: Setup) -> None:
    write = _tricky_write(setup, {"ratio": float("nan"), "top": float("-inf")})
    back = journal.decode_write(journal.encode_write(write))
    assert back.event is not None
    assert back.event.data["extra"] == {"ratio": None, "top": None}


def test_a_torn_or_corrupt_tail_ends_the_segment(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    records = [journal.frame(f'{{"n":{n}}}'.encode()) for n in range(3)]
    path.write_bytes(records[0] + records[1] + records[2][:-3])  # the last one torn
    assert [body for _, body in journal.read_records(path)] == [b'{"n":0}', b'{"n":1}']
    corrupt = bytearray(records[0] + records[1])
    corrupt[-2] ^= 0xFF  # a flipped byte in the second body: its CRC no longer matches
    path.write_bytes(bytes(corrupt))
    assert [body for _, body in journal.read_records(path)] == [b'{"n":0}']
    end_of_first = len(records[0])
    path.write_bytes(records[0] + records[1])
    assert [end for end, _ in journal.read_records(path, end_of_first)] == [len(path.read_bytes())]


CRASHING_PROCESS = """
import os, sys, django
django.setup()
from pathlib import Path
from bastion.errors.journal import Journal, decode_write, read_records
journal = Journal(Path(sys.argv[1]))
for _end, record in read_records(Path(sys.argv[2])):
    journal.append(decode_write(record), lambda position: None)
print("durable", flush=True)
os.kill(os.getpid(), 9)  # dies before any of it reaches the database
"""


def test_writes_of_a_killed_process_are_replayed_once(
    transactional_db: None, setup_committed: Setup, data_dir: Path
) -> None:
    writes = [_write(setup_committed, f"Crash{n % 2}", f"u{n}") for n in range(5)]
    late = PendingWrite(
        project_id=setup_committed.project.pk,
        received_at=writes[0].received_at,
        attachment_event_id=writes[0].event.event_id if writes[0].event else None,
        attachments=[Item({"type": "attachment", "filename": "late.txt"}, b"late")],
        counts={"session": 2},
    )
    lines = data_dir / "writes.records"
    lines.write_bytes(b"".join(journal.frame(journal.encode_write(w)) for w in [*writes, late]))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_PROCESS, str(journal_directory()), str(lines)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9 and "durable" in done.stdout, done.stderr
    [segment] = journal_directory().glob("*.journal")
    assert Event.objects.count() == 0

    writer = GroupCommitter(enabled=True)
    assert writer.recover() == 6
    assert Event.objects.count() == 5
    assert sorted(Issue.objects.values_list("event_count", flat=True)) == [2, 3]
    assert Attachment.objects.get().filename == "late.txt"
    assert ItemCount.objects.get().count == 2
    assert not segment.exists()
    assert writer.recover() == 0  # gone: nothing is replayed twice
    connection.close()


def test_a_replay_starts_at_the_checkpoint(
    transactional_db: None, setup_committed: Setup, data_dir: Path
) -> None:
    writes = [_write(setup_committed, "Checkpointed", f"u{n}") for n in range(3)]
    directory = journal_directory()
    directory.mkdir()
    segment = directory / "4242-dead.journal"
    records = [journal.frame(journal.encode_write(w)) for w in writes]
    segment.write_bytes(b"".join(records))
    journal.save_checkpoint(segment, len(records[0]))  # the first was stored before the crash
    assert GroupCommitter(enabled=True).recover() == 2
    assert Issue.objects.get().event_count == 2
    connection.close()


def test_a_live_process_segment_is_never_replayed(setup: Setup, data_dir: Path) -> None:
    live = journal.Journal(journal_directory())
    live.append(_write(setup, "Live"), lambda position: None)
    other_process_view = GroupCommitter(enabled=True)
    assert other_process_view.recover() == 0  # locked by its (live) owner
    assert len(list(journal_directory().glob("*.journal"))) == 1
    assert Event.objects.count() == 0


def test_accepted_writes_are_stored_by_the_writer_and_the_journal_is_cleaned_up(
    transactional_db: None, setup_committed: Setup, data_dir: Path
) -> None:
    writer = GroupCommitter(enabled=True)
    writes = [_write(setup_committed, f"Many{n % 4}", f"u{n % 9}") for n in range(120)]
    errors: list[BaseException] = []

    def send(chunk: list[PendingWrite]) -> None:
        try:
            for write in chunk:
                assert writer.submit(write) is True
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(writes[i::6],)) for i in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert writer.wait_idle(30)
        assert Event.objects.count() == 120
        assert sum(Issue.objects.values_list("event_count", flat=True)) == 120
    finally:
        writer.stop()
    assert not errors
    assert list(journal_directory().glob("*.journal")) == []
    connection.close()


def test_the_writer_stores_any_text_on_both_databases(
    transactional_db: None, setup_committed: Setup, data_dir: Path
) -> None:
    extra = {k: v for k, v in TRICKY_EXTRA.items() if k == "nested"}
    extra["text"] = "é € \U0001f600 \U0010ffff \u2028"  # no NUL: PostgreSQL refuses it
    extra["numbers"] = [2**70, -(2**63) - 1, 18446744073709551615, 0.1]
    writes = [_tricky_write(setup_committed, extra) for _ in range(3)]
    writer = GroupCommitter(enabled=True)
    try:
        assert all(writer.submit(write) for write in writes)
        assert writer.wait_idle(30)
    finally:
        writer.stop()
    for event in Event.objects.all():
        assert json.dumps(event.data["extra"], sort_keys=True) == json.dumps(extra, sort_keys=True)
        assert event.data["message"] == "café 💥"
    assert Event.objects.count() == 3
    assert Issue.objects.get().event_count == 3
    connection.close()


def test_a_rejected_write_is_kept_and_replays_once_renamed(
    transactional_db: None, setup_committed: Setup, data_dir: Path
) -> None:
    live = journal.Journal(journal_directory())
    kept = live.reject(_write(setup_committed, "Refused"), "IntegrityError('test')")
    live.close()
    writer = GroupCommitter(enabled=True)
    assert writer.recover() == 0  # a .rejected file is never retried on its own
    kept.rename(kept.with_suffix(".journal"))
    assert writer.recover() == 1
    assert Issue.objects.get().title.startswith("Refused")
    connection.close()


def test_a_closed_journal_refuses_appends(setup: Setup, data_dir: Path) -> None:
    live = journal.Journal(journal_directory())
    live.close()
    with pytest.raises(OSError, match="closed"):
        live.append(_write(setup, "Late"), lambda position: None)
    assert list(journal_directory().glob("*.journal")) == []


def test_a_segment_abandoned_before_it_was_named_is_removed(data_dir: Path) -> None:
    directory = journal_directory()
    directory.mkdir()
    abandoned = directory / ".4242-dead.new"
    abandoned.write_bytes(b"")
    fresh = directory / ".4243-being-created.new"
    fresh.write_bytes(b"")
    os.utime(abandoned, (0, 0))  # a minute old and more
    live = journal.Journal(directory)  # its own segment is locked: left alone
    assert GroupCommitter(enabled=True).recover(live) == 0
    assert not abandoned.exists()
    assert fresh.exists()  # it may be a process's segment before its lock
    assert len(list(directory.glob("*.journal"))) == 1
    live.close()
