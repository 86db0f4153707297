"""Writing accepted envelopes: a batch of them in one transaction, a handful of statements per
batch (not per event), so that one commit (one fsync) makes many events durable at once.

For each batch: skip event ids already stored, lock (or create) the issues the events group
into, count new affected users, insert the events, update the issues, store attachments, bump
the item counters. The issue counters are computed on locked rows, so concurrent batches (other
processes) never lose an increment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils.text import get_valid_filename

from bastion.core import audit
from bastion.core.context import Actor
from bastion.core.models import Organization, Project
from bastion.errors import alerts, lifecycle, sql
from bastion.errors.envelope import Item
from bastion.errors.grouping import GROUPING_VERSION
from bastion.errors.models import (
    Attachment,
    Event,
    IgnoreRule,
    Issue,
    IssueTagValue,
    IssueUser,
    ItemCount,
)

ISSUE_FIELDS = [
    "event_count",
    "users_affected",
    "last_seen",
    "title",
    "culprit",
    "level",
    "releases",
    "environments",
    "status",
    "status_changed_at",
    "resolution",
    "ignore_until",
    "ignore_until_events",
    "ignore_until_users",
    "regressed",
    "regressed_at",
    "suppressed_count",
]
MAX_LISTED_VALUES = 200
MAX_TAGS_COUNTED = 50  # per event
EVENT_COLUMNS = [
    "project_id",
    "issue_id",
    "event_id",
    "timestamp",
    "received_at",
    "level",
    "title",
    "release",
    "environment",
    "grouping_version",
    "grouping_hash",
    "data",
    "suppressed_by",
]


@dataclass(frozen=True)
class PreparedEvent:
    event_id: uuid.UUID
    data: dict[str, Any]
    grouping_hash: str
    timestamp: datetime
    user_hash: str | None
    suppressed_by: int | None = None  # the id of the ignore rule the event matched
    # ``data`` as JSON text, encoded once at ingest for the journal and the insert alike.
    data_json: str | None = dataclass_field(default=None, compare=False, repr=False)


@dataclass
class PendingWrite:
    """Everything one request stores."""

    project_id: int
    received_at: datetime
    event: PreparedEvent | None = None
    # For attachments sent after their event (no event item in this envelope).
    attachment_event_id: uuid.UUID | None = None
    attachments: list[Item] = dataclass_field(default_factory=list)
    counts: dict[str, int] = dataclass_field(default_factory=dict)


def _lock_issues(
    wanted: dict[tuple[int, str], PreparedEvent], now: datetime
) -> dict[tuple[int, str], Issue]:
    """The issues of these (project, grouping hash) pairs, locked, created when missing."""
    if not wanted:
        return {}

    by_project: dict[int, list[str]] = {}
    for project_id, hash_ in wanted:
        by_project.setdefault(project_id, []).append(hash_)

    def query() -> list[Issue]:
        clauses: list[str] = []
        params: list[Any] = [GROUPING_VERSION]
        for project_id, hashes in by_project.items():
            clauses.append(f"({project_col} = %s AND {hash_col} IN ({sql.marks(len(hashes))}))")
            params += [project_id, *hashes]
        where = f"{sql.column(Issue, 'grouping_version')} = %s AND ({' OR '.join(clauses)})"
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        order = f" ORDER BY {sql.column(Issue, 'id')}{lock}"
        return [i for i in sql.select_models(Issue, where, params, order) if isinstance(i, Issue)]

    project_col, hash_col = sql.column(Issue, "project_id"), sql.column(Issue, "grouping_hash")

    found = {(i.project_id, i.grouping_hash): i for i in query()}
    missing = [pair for pair in wanted if pair not in found]
    if missing:
        Issue.objects.bulk_create(
            [
                Issue(
                    project_id=project_id,
                    grouping_version=GROUPING_VERSION,
                    grouping_hash=hash_,
                    title=wanted[(project_id, hash_)].data["title"],
                    culprit=wanted[(project_id, hash_)].data["culprit"],
                    level=wanted[(project_id, hash_)].data["level"],
                    first_seen=now,
                    last_seen=now,
                )
                for project_id, hash_ in missing
            ],
            ignore_conflicts=True,  # another process may create the same issue meanwhile
        )
        found = {(i.project_id, i.grouping_hash): i for i in query()}
    return found


def _apply(
    issue: Issue, event: PreparedEvent, now: datetime, new_user: bool
) -> list[lifecycle.Transition]:
    """Count the event on its issue; the status transitions it caused (a suppressed event
    causes none)."""
    data = event.data
    transitions = []
    if event.suppressed_by is None:
        regression = lifecycle.before_event(issue, data["release"], now)
        if regression is not None:
            transitions.append(regression)
    issue.event_count += 1
    issue.suppressed_count += 1 if event.suppressed_by is not None else 0
    issue.users_affected += 1 if new_user else 0
    issue.last_seen = max(issue.last_seen, now)
    issue.title, issue.culprit, issue.level = data["title"], data["culprit"], data["level"]
    for attr, value in (("releases", data["release"]), ("environments", data["environment"])):
        values: list[str] = getattr(issue, attr)
        if value and value not in values and len(values) < MAX_LISTED_VALUES:
            setattr(issue, attr, [*values, value])
    if event.suppressed_by is None:
        unignored = lifecycle.after_event(issue, now)
        if unignored is not None:
            transitions.append(unignored)
    return transitions


def _new_events(writes: Sequence[PendingWrite]) -> list[PendingWrite]:
    """Writes whose event is not stored yet (nor earlier in this batch)."""
    with_events = [w for w in writes if w.event is not None]
    if not with_events:
        return []
    ids_by_project: dict[int, set[uuid.UUID]] = {}
    for write in with_events:
        assert write.event is not None
        ids_by_project.setdefault(write.project_id, set()).add(write.event.event_id)
    clauses: list[str] = []
    params: list[Any] = []
    project_col, id_col = sql.column(Event, "project_id"), sql.column(Event, "event_id")
    for project_id, ids in ids_by_project.items():  # (project, event_id) is the unique index
        clauses.append(f"({project_col} = %s AND {id_col} IN ({sql.marks(len(ids))}))")
        params += [project_id, *(sql.prep(Event, "event_id", i) for i in ids)]
    rows = sql.select_rows(Event, ["project_id", "event_id"], " OR ".join(clauses), params)
    stored = {(project_id, event_id) for project_id, event_id in rows}
    fresh = []
    for write in with_events:
        assert write.event is not None
        pair = (write.project_id, write.event.event_id)
        if pair not in stored:
            stored.add(pair)
            fresh.append(write)
    return fresh


def _new_users(
    fresh: list[PendingWrite], issues: dict[tuple[int, str], Issue]
) -> set[tuple[int, str]]:
    pairs = set()
    for write in fresh:
        assert write.event is not None
        if write.event.user_hash is not None:
            issue = issues[(write.project_id, write.event.grouping_hash)]
            pairs.add((issue.pk, write.event.user_hash))
    if not pairs:
        return set()
    issue_ids, hashes = sorted({i for i, _ in pairs}), sorted({u for _, u in pairs})
    where = (
        f"{sql.column(IssueUser, 'issue_id')} IN ({sql.marks(len(issue_ids))})"
        f" AND {sql.column(IssueUser, 'user_hash')} IN ({sql.marks(len(hashes))})"
    )
    rows = sql.select_rows(IssueUser, ["issue_id", "user_hash"], where, [*issue_ids, *hashes])
    return pairs - {(issue_id, user_hash) for issue_id, user_hash in rows}


def _store_events(writes: Sequence[PendingWrite]) -> dict[int, Event]:
    """Insert new events and update their issues; the new Event of each write index."""
    fresh = _new_events(writes)
    if not fresh:
        return {}
    wanted: dict[tuple[int, str], PreparedEvent] = {}
    for write in fresh:
        assert write.event is not None
        wanted.setdefault((write.project_id, write.event.grouping_hash), write.event)
    issues = _lock_issues(wanted, max(w.received_at for w in fresh))
    new_users = _new_users(fresh, issues)
    counted_users: set[tuple[int, str]] = set()
    transitions: list[lifecycle.Transition] = []
    created: dict[int, Event] = {}
    for write in fresh:
        event = write.event
        assert event is not None
        issue = issues[(write.project_id, event.grouping_hash)]
        user = (issue.pk, event.user_hash or "")
        is_new_user = user in new_users and user not in counted_users
        counted_users.add(user)
        transitions += _apply(issue, event, write.received_at, is_new_user)
        created[id(write)] = Event(
            project_id=write.project_id,
            issue=issue,
            event_id=event.event_id,
            timestamp=event.timestamp,
            received_at=write.received_at,
            level=event.data["level"],
            title=event.data["title"],
            release=event.data["release"],
            environment=event.data["environment"],
            grouping_version=GROUPING_VERSION,
            grouping_hash=event.grouping_hash,
            data=event.data,
            suppressed_by_id=event.suppressed_by,
        )
    texts = [w.event.data_json if w.event else None for w in fresh]  # created's order
    sql.insert_rows(Event, EVENT_COLUMNS, list(created.values()), ("data", texts))
    if new_users:
        sql.insert_rows(
            IssueUser,
            ["issue_id", "user_hash"],
            [IssueUser(issue_id=i, user_hash=u) for i, u in sorted(new_users)],
        )
    sql.update_rows(Issue, ISSUE_FIELDS, list(issues.values()))
    _count_tags(list(created.values()))
    _count_rule_matches(list(created.values()))
    _audit_transitions(transitions)
    alerts.after_store(list(created.values()), list(issues.values()), transitions)
    return created


TAGGED_FIELDS = ("environment", "release", "level")


def _count_tags(events: list[Event]) -> None:
    """Add this batch's tag values to their issues' distributions (one upsert statement)."""
    totals: dict[tuple[int, str, str], int] = {}
    for event in events:
        tags = event.data.get("tags") or {}
        pairs = [(name, event.data.get(name)) for name in TAGGED_FIELDS]
        for key, value in [*pairs, *tags.items()][:MAX_TAGS_COUNTED]:
            if value not in (None, ""):
                pair = (event.issue_id, str(key)[:200], str(value)[:200])
                totals[pair] = totals.get(pair, 0) + 1
    rows = [(*pair, n) for pair, n in sorted(totals.items())]
    sql.add_counts(IssueTagValue, ("issue_id", "key", "value"), "count", rows)


def _count_rule_matches(events: list[Event]) -> None:
    """One UPDATE per ignore rule matched in this batch (rules are few)."""
    matched: dict[int, tuple[int, datetime]] = {}
    for event in events:
        if event.suppressed_by_id is not None:
            count, last = matched.get(event.suppressed_by_id, (0, event.received_at))
            matched[event.suppressed_by_id] = (count + 1, max(last, event.received_at))
    for rule_id, (count, last) in sorted(matched.items()):
        IgnoreRule.objects.filter(pk=rule_id).update(
            match_count=F("match_count") + count, last_matched_at=last
        )


def _audit_transitions(transitions: list[lifecycle.Transition]) -> None:
    """Status changes made by ingest (regressions, expired ignores) are audited as the system;
    they are rare, so the audit row costs nothing on the usual path."""
    if not transitions:
        return
    orgs = dict(
        Project.objects.filter(pk__in={t.project_id for t in transitions}).values_list(
            "pk", "organization_id"
        )
    )
    actor = Actor.system("errors.ingest")
    for transition in transitions:
        audit.record(
            actor,
            transition.action,
            organization=Organization(pk=orgs[transition.project_id]),
            object_type="errors.issue",
            object_id=str(transition.issue_id),
            changes={"reason": transition.reason},
        )


def _store_attachment(event: Event, item: Item) -> None:
    filename = get_valid_filename(str(item.headers.get("filename") or "attachment")[:200])
    attachment = Attachment(
        project_id=event.project_id,
        event=event,
        event_id_hex=event.event_id.hex,
        filename=filename or "attachment",
        content_type=str(item.headers.get("content_type") or "")[:100],
        attachment_type=str(item.headers.get("attachment_type") or "event.attachment")[:50],
        size=len(item.payload),
    )
    attachment.file.save(filename or "attachment", ContentFile(item.payload), save=False)
    attachment.save()


def _store_attachments(writes: Sequence[PendingWrite], created: dict[int, Event]) -> None:
    for write in writes:
        if not write.attachments:
            continue
        target = created.get(id(write))
        if target is not None and target.pk is None:  # inserted without RETURNING
            target = Event.objects.get(project_id=write.project_id, event_id=target.event_id)
        if target is None:
            event_id = write.event.event_id if write.event else write.attachment_event_id
            if event_id is None or write.event is not None:
                continue  # a duplicate event: its attachments were stored with the original
            target = Event.objects.filter(project_id=write.project_id, event_id=event_id).first()
        if target is not None:
            for item in write.attachments:
                _store_attachment(target, item)


def _count(writes: Sequence[PendingWrite]) -> None:
    totals: dict[tuple[int, Any, str], int] = {}
    for write in writes:
        for item_type, n in write.counts.items():
            key = (write.project_id, write.received_at.date(), item_type)
            totals[key] = totals.get(key, 0) + n
    sql.add_counts(
        ItemCount,
        ("project_id", "day", "item_type"),
        "count",
        [(*key, n) for key, n in sorted(totals.items())],
    )


def store_batch(writes: Sequence[PendingWrite]) -> list[bool]:
    """Store the writes in one transaction; for each, whether a new event was stored."""
    with transaction.atomic():
        created = _store_events(writes)
        _store_attachments(writes, created)
        _count(writes)
    return [id(write) in created for write in writes]


def store_each(writes: Sequence[PendingWrite]) -> list[bool | BaseException]:
    """The fallback when a batch fails: one transaction per write, errors kept per write."""
    results: list[bool | BaseException] = []
    for write in writes:
        try:
            results.append(store_batch([write])[0])
        except IntegrityError:
            # The same event id was stored concurrently: it is stored, which is what counts.
            if (
                write.event is not None
                and Event.objects.filter(
                    project_id=write.project_id, event_id=write.event.event_id
                ).exists()
            ):
                results.append(False)
            else:
                results.append(IntegrityError("could not store the event"))
        except Exception as exc:  # noqa: BLE001 - handed back to the waiting request
            results.append(exc)
    return results
