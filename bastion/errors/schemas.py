"""Typed contracts of the errors API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema

from bastion.errors.models import DsnKey, Event, Issue

IssueStatusName = Literal["unresolved", "resolved", "ignored"]


class IssueOut(Schema):
    id: int
    title: str
    culprit: str
    level: str
    status: str
    event_count: int
    users_affected: int
    first_seen: datetime
    last_seen: datetime
    releases: list[str]
    environments: list[str]
    grouping_version: str

    @classmethod
    def of(cls, issue: Issue) -> IssueOut:
        return cls(
            id=issue.pk,
            title=issue.title,
            culprit=issue.culprit,
            level=issue.level,
            status=issue.status,
            event_count=issue.event_count,
            users_affected=issue.users_affected,
            first_seen=issue.first_seen,
            last_seen=issue.last_seen,
            releases=list(issue.releases),
            environments=list(issue.environments),
            grouping_version=issue.grouping_version,
        )


class IssuePage(Schema):
    count: int
    items: list[IssueOut]


class EventOut(Schema):
    event_id: str
    issue_id: int
    timestamp: datetime
    received_at: datetime
    level: str
    title: str
    release: str
    environment: str
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            event_id=event.event_id.hex,
            issue_id=event.issue_id,
            timestamp=event.timestamp,
            received_at=event.received_at,
            level=event.level,
            title=event.title,
            release=event.release,
            environment=event.environment,
            data=event.data,
        )


class EventPage(Schema):
    count: int
    items: list[EventOut]


class IssueStatusIn(Schema):
    status: IssueStatusName


class DsnKeyOut(Schema):
    id: int
    label: str
    dsn: str
    enabled: bool
    rate_limit_per_minute: int
    created_at: datetime

    @classmethod
    def of(cls, key: DsnKey, dsn: str) -> DsnKeyOut:
        return cls(
            id=key.pk,
            label=key.label,
            dsn=dsn,
            enabled=key.enabled,
            rate_limit_per_minute=key.rate_limit_per_minute,
            created_at=key.created_at,
        )


class DsnKeyIn(Schema):
    label: str = "Default"
    rate_limit_per_minute: int = 0


class DsnKeyPatch(Schema):
    enabled: bool | None = None
    rate_limit_per_minute: int | None = None
