"""Typed contracts of the scanning API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from bastion.scanning import sla
from bastion.scanning.models import Finding, FindingComment, Scan, Target
from bastion.scanning.progress import progress_of

EnvironmentName = Literal["production", "staging", "test", "development"]
TriageName = Literal["", "false-positive", "accepted-risk"]
Patterns = list[str]


class TargetIn(Schema):
    project: str = Field(..., max_length=50)
    name: str = Field(..., min_length=1, max_length=200)
    base_url: str = Field(..., max_length=2000)
    environment: EnvironmentName = "staging"
    include: Patterns = Field(default_factory=list)
    exclude: Patterns = Field(default_factory=list)
    extra_hosts: Patterns = Field(default_factory=list)
    rate_limit: float = Field(0.0, ge=0, le=10_000)
    concurrency: int = Field(0, ge=0, le=64)


class TargetPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    base_url: str | None = Field(None, max_length=2000)
    environment: EnvironmentName | None = None
    include: Patterns | None = None
    exclude: Patterns | None = None
    extra_hosts: Patterns | None = None
    rate_limit: float | None = Field(None, ge=0, le=10_000)
    concurrency: int | None = Field(None, ge=0, le=64)


class TargetOut(Schema):
    id: int
    project: str
    name: str
    base_url: str
    environment: str
    include: Patterns
    exclude: Patterns
    extra_hosts: Patterns
    rate_limit: float
    concurrency: int
    verified: bool
    verification_method: str
    verified_at: datetime | None
    verification_token: str = Field(
        description="Put it in /.well-known/bastion-verification.txt or the "
        "X-Bastion-Verification response header, then POST .../verify."
    )
    created_at: datetime

    @classmethod
    def of(cls, target: Target) -> TargetOut:
        return cls(
            id=target.pk,
            project=target.project.slug,
            name=target.name,
            base_url=target.base_url,
            environment=target.environment,
            include=list(target.include),
            exclude=list(target.exclude),
            extra_hosts=list(target.extra_hosts),
            rate_limit=target.rate_limit,
            concurrency=target.concurrency,
            verified=target.verified_at is not None,
            verification_method=target.verification_method,
            verified_at=target.verified_at,
            verification_token=target.verification_token,
            created_at=target.created_at,
        )


class ScanIn(Schema):
    cluster: str = Field("default", max_length=50)
    profile: str = Field("lightning", max_length=50)
    queue: str = Field("default", max_length=50)


class ProgressOut(Schema):
    checks_done: int
    checks_total: int
    requests_sent: int
    findings: int
    percent: int


class ScanOut(Schema):
    id: int
    target_id: int
    profile: str
    state: str
    job_id: int | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    progress: ProgressOut
    checks: list[dict[str, object]]

    @classmethod
    def of(cls, scan: Scan, seen: dict[int, int] | None = None) -> ScanOut:
        p = progress_of(scan, seen)
        return cls(
            id=scan.pk,
            target_id=scan.target_id,
            profile=scan.profile,
            state=scan.state,
            job_id=scan.job_id,
            created_by=scan.created_by,
            created_at=scan.created_at,
            started_at=scan.started_at,
            finished_at=scan.finished_at,
            error=scan.error,
            progress=ProgressOut(
                checks_done=p.checks_done,
                checks_total=p.checks_total,
                requests_sent=p.requests_sent,
                findings=p.findings,
                percent=p.percent,
            ),
            checks=list(scan.checks),
        )


class FindingOut(Schema):
    id: int
    target_id: int
    type: str
    title: str
    severity: str
    cwe: str
    owasp: str
    confidence: str
    url: str
    method: str
    parameter: str
    state: str
    triage: str
    triage_reason: str
    accepted_until: datetime | None
    assignee: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    fixed_at: datetime | None
    due_at: datetime | None
    overdue: bool

    @classmethod
    def of(cls, finding: Finding) -> FindingOut:
        return cls(**cls.fields_of(finding))

    @staticmethod
    def fields_of(finding: Finding) -> dict[str, Any]:
        due = sla.due_at(finding)
        return {
            "id": finding.pk,
            "target_id": finding.target_id,
            "type": finding.type,
            "title": finding.title,
            "severity": finding.severity,
            "cwe": finding.cwe,
            "owasp": finding.owasp,
            "confidence": finding.confidence,
            "url": finding.url,
            "method": finding.method,
            "parameter": finding.parameter,
            "state": finding.state,
            "triage": finding.triage,
            "triage_reason": finding.triage_reason,
            "accepted_until": finding.accepted_until,
            "assignee": finding.assignee.username if finding.assignee else None,
            "first_seen_at": finding.first_seen_at,
            "last_seen_at": finding.last_seen_at,
            "fixed_at": finding.fixed_at,
            "due_at": due,
            "overdue": sla.is_overdue(finding),
        }


class CommentOut(Schema):
    id: int
    author: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, comment: FindingComment) -> CommentOut:
        return cls(
            id=comment.pk,
            author=comment.author_label,
            body=comment.body,
            created_at=comment.created_at,
        )


class FindingDetailOut(FindingOut):
    evidence: str
    request: str
    response: str
    remediation: str
    details: dict[str, object]
    comments: list[CommentOut]

    @classmethod
    def detail(cls, finding: Finding) -> FindingDetailOut:
        return cls(
            **cls.fields_of(finding),
            evidence=finding.evidence,
            request=finding.request,
            response=finding.response,
            remediation=finding.remediation,
            details=dict(finding.details),
            comments=[CommentOut.of(c) for c in finding.comments.all()],
        )


class TriageIn(Schema):
    triage: TriageName = ""
    reason: str = Field("", max_length=5000)
    accepted_until: datetime | None = None
    assignee: str | None = Field(None, max_length=150, description="A member's username.")


class CommentIn(Schema):
    body: str = Field(..., min_length=1, max_length=10_000)
