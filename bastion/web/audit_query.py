"""Reading the audit log for a page: scoping, filters and export rows.

Rows are read only for an organization the caller belongs to (resolved through
``bastion.core.access``); events with no organization (logins, user creation) never appear here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from bastion.core.access import Principal, require_role
from bastion.core.models import AuditEvent, Organization, Role

EXPORT_FIELDS = [
    "seq",
    "created_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "ip",
    "hash",
]


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    object: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.actor or self.action or self.object or self.since or self.until)


def events_for(principal: Principal, organization: Organization) -> QuerySet[AuditEvent]:
    require_role(principal, organization, Role.VIEWER)
    return AuditEvent.objects.filter(organization=organization).select_related("actor")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def filtered(events: QuerySet[AuditEvent], flt: AuditFilter) -> QuerySet[AuditEvent]:
    if flt.actor:
        events = events.filter(actor_label__icontains=flt.actor)
    if flt.action:
        events = events.filter(action__istartswith=flt.action)
    if flt.object:
        events = events.filter(
            Q(object_repr__icontains=flt.object)
            | Q(object_type__icontains=flt.object)
            | Q(object_id=flt.object)
        )
    if flt.since:
        events = events.filter(created_at__gte=_day_start(flt.since))
    if flt.until:
        events = events.filter(created_at__lt=_day_start(flt.until + timedelta(days=1)))
    return events.order_by("-seq")


def export_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "changes": event.changes,
        "ip": event.ip,
        "hash": event.hash,
    }


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Defuse spreadsheet formulas in exported text (CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return value

    writer.writeheader()
    yield flush()
    for event in events.iterator(chunk_size=500):
        row = export_row(event)
        row["changes"] = json.dumps(row["changes"], sort_keys=True)
        writer.writerow({key: _cell(value) for key, value in row.items()})
        yield flush()


def json_chunks(events: QuerySet[AuditEvent]) -> Iterator[str]:
    yield "["
    separator = ""
    for event in events.iterator(chunk_size=500):
        yield separator + json.dumps(export_row(event), sort_keys=True)
        separator = ",\n"
    yield "]\n"
