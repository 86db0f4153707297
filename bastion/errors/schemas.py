"""Typed contracts of the errors API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema

from bastion.errors import fingerprinting
from bastion.errors.models import DsnKey, Event, IgnoreRule, Issue, IssueComment, IssueReview

IssueStatusName = Literal["unresolved", "resolved", "ignored"]
MAX_ID = 2**62


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
    resolution: str = ""
    ignore_until: datetime | None = None
    ignore_until_events: int | None = None
    ignore_until_users: int | None = None
    regressed: bool = False
    regressed_at: datetime | None = None
    assignee: str | None = None
    comment_count: int = 0

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
            resolution=issue.resolution,
            ignore_until=issue.ignore_until,
            ignore_until_events=issue.ignore_until_events,
            ignore_until_users=issue.ignore_until_users,
            regressed=issue.regressed,
            regressed_at=issue.regressed_at,
            assignee=issue.assignee.username if issue.assignee else None,
            comment_count=issue.comment_count,
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


class IgnoreIn(Schema):
    """Ignore until whichever comes first; none given: forever."""

    until: datetime | None = None
    more_events: int | None = Field(None, ge=1, le=1_000_000_000)
    more_users: int | None = Field(None, ge=1, le=1_000_000_000)


class ReviewIn(Schema):
    comment: str = Field("", max_length=5000)


class ReviewOut(Schema):
    id: int
    issue_id: int
    user: str
    reviewed_at: datetime
    comment: str

    @classmethod
    def of(cls, review: IssueReview) -> ReviewOut:
        return cls(
            id=review.pk,
            issue_id=review.issue_id,
            user=review.user.username if review.user else review.reviewer,
            reviewed_at=review.reviewed_at,
            comment=review.comment,
        )


class IssuePatch(Schema):
    """Fields to change; one left out stays as it is (``"assignee": null`` unassigns)."""

    assignee: str | None = Field(None, max_length=150, description="A member's username.")


class IssuesBulkIn(Schema):
    """Several issues of the project at once: a new status, a new assignee, or both (all or
    none). ``"assignee": null`` unassigns; left out, assignees stay."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(..., max_length=100)
    status: IssueStatusName | None = None
    assignee: str | None = Field(None, max_length=150, description="A member's username.")


class CommentIn(Schema):
    body: str = Field(..., min_length=1, max_length=5000)


class CommentOut(Schema):
    id: int
    issue_id: int
    author: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, comment: IssueComment) -> CommentOut:
        return cls(
            id=comment.pk,
            issue_id=comment.issue_id,
            author=comment.author.username if comment.author else comment.author_label,
            body=comment.body,
            created_at=comment.created_at,
        )


RuleKindName = Literal["exception_type", "message_regex", "tag", "transaction", "url"]


class IgnoreRuleIn(Schema):
    kind: RuleKindName
    value: str = Field(..., max_length=500)
    reason: str = Field(..., max_length=500)


class IgnoreRuleOut(Schema):
    id: int
    kind: str
    value: str
    reason: str
    author: str
    created_at: datetime
    enabled: bool
    match_count: int
    last_matched_at: datetime | None

    @classmethod
    def of(cls, rule: IgnoreRule) -> IgnoreRuleOut:
        return cls(
            id=rule.pk,
            kind=rule.kind,
            value=rule.value,
            reason=rule.reason,
            author=rule.created_by.username if rule.created_by else rule.author,
            created_at=rule.created_at,
            enabled=rule.enabled,
            match_count=rule.match_count,
            last_matched_at=rule.last_matched_at,
        )


class CoverageParams(Schema):
    start: str = Field("", max_length=10, alias="from")
    end: str = Field("", max_length=10, alias="to")


class FingerprintRulesIn(Schema):
    rules: str = Field(..., max_length=20_000)


class FingerprintRuleOut(Schema):
    line: int
    text: str
    matchers: list[str]
    fingerprint: list[str]


class FingerprintRulesOut(Schema):
    rules: str
    parsed: list[FingerprintRuleOut]

    @classmethod
    def of(cls, text: str) -> FingerprintRulesOut:
        return cls(
            rules=text,
            parsed=[
                FingerprintRuleOut(
                    line=rule.line,
                    text=rule.text,
                    matchers=[
                        f"{'!' if m.negated else ''}{m.key}:{m.pattern}" for m in rule.matchers
                    ],
                    fingerprint=list(rule.fingerprint),
                )
                for rule in fingerprinting.parse(text)
            ],
        )
