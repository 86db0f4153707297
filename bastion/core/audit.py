"""The append-only, hash-chained audit log.

Each row's hash covers its content and the previous row's hash, so editing or removing a row
in the database breaks the chain, and ``bastion audit verify`` finds where.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from bastion.core.context import Actor
from bastion.core.models import AuditEvent, Organization

GENESIS = "0" * 64
# Arbitrary constant naming the advisory lock that serializes chain appends on PostgreSQL.
_CHAIN_LOCK_ID = 0x42A5_7100


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _digest(prev_hash: str, event: AuditEvent) -> str:
    body = json.dumps(
        {
            "prev": prev_hash,
            "at": event.created_at.isoformat(),
            "org": event.organization_id,
            "actor": event.actor_id,
            "actor_label": event.actor_label,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "object_repr": event.object_repr,
            "changes": event.changes,
            "ip": event.ip,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _lock_chain() -> None:
    # SQLite runs every write transaction as BEGIN IMMEDIATE (settings), which already
    # serializes appends; PostgreSQL needs an explicit lock held until commit.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])


def record(
    actor: Actor,
    action: str,
    *,
    organization: Organization | None = None,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Append one audit row in the caller's transaction (call it inside the action's atomic)."""
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(target.pk)
        object_repr = object_repr or str(target)[:300]
    with transaction.atomic():
        _lock_chain()
        prev = AuditEvent.objects.order_by("-seq").values_list("hash", flat=True).first() or GENESIS
        event = AuditEvent(
            created_at=timezone.now(),
            organization=organization,
            actor=actor.user if actor.user is not None and actor.user.pk else None,
            actor_label=actor.label[:200],
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr[:300],
            changes=_canonical(changes or {}),
            ip=actor.ip,
            prev_hash=prev,
        )
        event.hash = _digest(prev, event)
        event.save()
    return event


@dataclass(frozen=True)
class ChainReport:
    checked: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""


def _events_in_order(batch: int = 2000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain() -> ChainReport:
    prev = GENESIS
    checked = 0
    for event in _events_in_order():
        if event.prev_hash != prev:
            return ChainReport(
                checked, False, event.seq, "previous-hash link broken (row removed?)"
            )
        if _digest(prev, event) != event.hash:
            return ChainReport(
                checked, False, event.seq, "content does not match its hash (row edited?)"
            )
        prev = event.hash
        checked += 1
    return ChainReport(checked, True)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """A short before/after summary of the fields that changed."""
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
