"""Filtering and exporting the audit trail (CSV or JSON), shared by the API and the CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Literal, Protocol

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from bastion.core.models import AuditEvent

CSV_COLUMNS = (
    "seq",
    "created_at",
    "organization",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "ip",
    "prev_hash",
    "hash",
)


class AuditFilterValues(Protocol):
    actor: str | None
    action: str | None
    object_type: str | None
    since: datetime | None
    until: datetime | None


def filter_audit(events: QuerySet[AuditEvent], filters: AuditFilterValues) -> QuerySet[AuditEvent]:
    if filters.actor:
        events = events.filter(actor_label=filters.actor)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.object_type:
        events = events.filter(object_type=filters.object_type)
    if filters.since is not None:
        events = events.filter(created_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(created_at__lt=filters.until)
    return events


def event_row(event: AuditEvent) -> dict[str, object]:
    return {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "organization": event.organization.slug if event.organization is not None else None,
        "actor": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "changes": event.changes,
        "ip": event.ip,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _csv_safe(value: object) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    if value is None:
        text = ""
    # Spreadsheet formula injection: a cell starting with one of these is evaluated by Excel.
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        text = "'" + text
    return text


def iter_csv(events: QuerySet[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events.select_related("organization").iterator(chunk_size=1000):
        row = event_row(event)
        writer.writerow([_csv_safe(row[column]) for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def iter_json(events: QuerySet[AuditEvent]) -> Iterator[str]:
    yield "["
    first = True
    for event in events.select_related("organization").iterator(chunk_size=1000):
        yield ("" if first else ",") + json.dumps(event_row(event), sort_keys=True)
        first = False
    yield "]\n"


def export_audit(
    events: QuerySet[AuditEvent], format: Literal["csv", "json"], *, filename: str
) -> StreamingHttpResponse:
    if format == "csv":
        response = StreamingHttpResponse(iter_csv(events), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(iter_json(events), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{format}"'
    return response
