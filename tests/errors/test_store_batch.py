"""Batched storage and group commit: many writes, one transaction, constant statements."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bastion.errors.envelope import Item
from bastion.errors.ingest import committer, prepare_event
from bastion.errors.models import Attachment, Event, Issue, IssueUser, ItemCount
from bastion.errors.store import PendingWrite, store_batch
from tests.errors.conftest import Setup
from tests.errors.helpers import event_payload


def _write(setup: Setup, kind: str, user: str, release: str = "r1") -> PendingWrite:
    now = datetime.now(tz=UTC)
    payload = event_payload(
        user={"id": user},
        release=release,
        exception={"values": [{"type": kind, "value": "boom"}]},
    )
    event = prepare_event(json.dumps(payload).encode(), uuid.uuid4(), setup.key, now, None)
    return PendingWrite(project_id=setup.project.pk, received_at=now, event=event)


def _data_statements(queries: CaptureQueriesContext) -> int:
    return sum(
        1
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
    )


def test_a_batch_costs_the_same_statements_as_one_write(setup: Setup) -> None:
    with CaptureQueriesContext(connection) as one:
        store_batch([_write(setup, "AError", "u0")])
    writes = [
        _write(setup, kind, user, release)
        for kind in ("AError", "BError", "CError")
        for user, release in (("u1", "r1"), ("u2", "r2"), ("u1", "r3"))
    ]
    duplicate = PendingWrite(
        project_id=setup.project.pk, received_at=writes[0].received_at, event=writes[0].event
    )
    with CaptureQueriesContext(connection) as many:
        results = store_batch([*writes, duplicate])
    assert results == [True] * 9 + [False]
    # New issues cost one insert and one more read of the issues; nothing is per event.
    assert _data_statements(many) <= _data_statements(one) + 2
    assert Event.objects.count() == 10
    issues = {i.title.split(":")[0]: i for i in Issue.objects.all()}
    assert issues["AError"].event_count == 4 and issues["AError"].users_affected == 3
    assert issues["BError"].event_count == 3 and issues["BError"].users_affected == 2
    assert sorted(issues["BError"].releases) == ["r1", "r2", "r3"]
    assert IssueUser.objects.count() == 7


def test_attachments_after_their_event_and_counts(setup: Setup) -> None:
    write = _write(setup, "AError", "u1")
    store_batch([write])
    assert write.event is not None
    later = PendingWrite(
        project_id=setup.project.pk,
        received_at=write.received_at,
        attachment_event_id=write.event.event_id,
        attachments=[Item({"type": "attachment", "filename": "../../etc/x.txt"}, b"data")],
        counts={"session": 2},
    )
    assert store_batch([later]) == [False]
    attachment = Attachment.objects.get()
    assert attachment.filename == "etcx.txt" or "/" not in attachment.filename
    assert ItemCount.objects.get().count == 2


def test_group_commit_from_many_threads(transactional_db: None, setup_committed: Setup) -> None:
    committer.enabled = True
    errors: list[BaseException] = []
    writes = [_write(setup_committed, f"E{n % 5}", f"u{n % 7}") for n in range(80)]

    def send(chunk: list[PendingWrite]) -> None:
        try:
            for write in chunk:
                assert committer.submit(write) is True
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(writes[i::8],)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        committer.stop()
    assert not errors
    assert Event.objects.count() == 80
    assert sum(Issue.objects.values_list("event_count", flat=True)) == 80
    assert Issue.objects.count() == 5
