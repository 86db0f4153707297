"""Scan targets, scans and findings over /api/v1/: parse, fetch through the scoped helpers
(``access``: other organizations' objects are 404, a too-low role 403), delegate to the named
actions (``services``, ``actions``)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for, projects_for
from bastion.core.models import Organization, Role, User
from bastion.jobs.services import get_cluster_for
from bastion.scanning import access, actions, services, sla
from bastion.scanning.models import Finding, Scan, Target
from bastion.scanning.progress import findings_seen
from bastion.scanning.schemas import (
    CommentIn,
    CommentOut,
    FindingDetailOut,
    FindingOut,
    ScanIn,
    ScanOut,
    TargetIn,
    TargetOut,
    TargetPatch,
    TriageIn,
)

router = Router(tags=["scanning"])
BASE = "/organizations/{org}"
MAX_PAGE = 200


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


def _org(request: HttpRequest, org: str, minimum: str = Role.VIEWER) -> Organization:
    return get_organization_for(_principal(request), org, minimum)


def _target(request: HttpRequest, org: str, target_id: int, minimum: str = Role.VIEWER) -> Target:
    organization = _org(request, org)
    return access.get_target_for(_principal(request), target_id, minimum, organization)


def _scan(request: HttpRequest, org: str, scan_id: int, minimum: str = Role.VIEWER) -> Scan:
    organization = _org(request, org)
    return access.get_scan_for(_principal(request), scan_id, minimum, organization)


def _finding(
    request: HttpRequest, org: str, finding_id: int, minimum: str = Role.VIEWER
) -> Finding:
    organization = _org(request, org)
    return access.get_finding_for(_principal(request), finding_id, minimum, organization)


@router.get(BASE + "/scan-targets", response=list[TargetOut])
def list_targets(request: HttpRequest, org: str) -> list[TargetOut]:
    organization = _org(request, org)
    targets = access.targets_for(_principal(request), organization)[:MAX_PAGE]
    return [TargetOut.of(t) for t in targets]


@router.post(BASE + "/scan-targets", response={201: TargetOut})
def create_target(request: HttpRequest, org: str, body: TargetIn) -> Status[TargetOut]:
    principal = _principal(request)
    organization = _org(request, org, Role.ADMIN)
    project = projects_for(principal, organization).filter(slug=body.project).first()
    if project is None:
        raise Http404("No such project.")
    target = services.create_target(
        principal,
        project,
        name=body.name,
        base_url=body.base_url,
        environment=body.environment,
        include=body.include,
        exclude=body.exclude,
        extra_hosts=body.extra_hosts,
        rate_limit=body.rate_limit,
        concurrency=body.concurrency,
    )
    return Status(201, TargetOut.of(target))


@router.get(BASE + "/scan-targets/{target_id}", response=TargetOut)
def get_target(request: HttpRequest, org: str, target_id: int) -> TargetOut:
    return TargetOut.of(_target(request, org, target_id))


@router.patch(BASE + "/scan-targets/{target_id}", response=TargetOut)
def update_target(request: HttpRequest, org: str, target_id: int, body: TargetPatch) -> TargetOut:
    target = _target(request, org, target_id, Role.ADMIN)
    updated = actions.update_target(_principal(request), target, **body.dict(exclude_unset=True))
    return TargetOut.of(updated)


@router.post(BASE + "/scan-targets/{target_id}/verify", response=TargetOut)
def verify_target(request: HttpRequest, org: str, target_id: int) -> TargetOut:
    target = _target(request, org, target_id, Role.ADMIN)
    return TargetOut.of(services.verify_target(_principal(request), target))


@router.get(BASE + "/scan-targets/{target_id}/scans", response=list[ScanOut])
def list_scans(request: HttpRequest, org: str, target_id: int, limit: int = 50) -> list[ScanOut]:
    target = _target(request, org, target_id)
    limit = max(1, min(limit, MAX_PAGE))
    scans = list(access.scans_for(_principal(request), target)[:limit])
    seen = findings_seen(scans)
    return [ScanOut.of(s, seen) for s in scans]


@router.post(BASE + "/scan-targets/{target_id}/scans", response={201: ScanOut})
def start_scan(request: HttpRequest, org: str, target_id: int, body: ScanIn) -> Status[ScanOut]:
    principal = _principal(request)
    target = _target(request, org, target_id, Role.MEMBER)
    cluster = get_cluster_for(principal, target.project.organization, body.cluster, Role.MEMBER)
    scan = services.start_scan(principal, target, cluster, profile=body.profile, queue=body.queue)
    return Status(201, ScanOut.of(scan))


@router.get(BASE + "/scans/{scan_id}", response=ScanOut)
def get_scan(request: HttpRequest, org: str, scan_id: int) -> ScanOut:
    return ScanOut.of(_scan(request, org, scan_id))


@router.post(BASE + "/scans/{scan_id}/cancel", response=ScanOut)
def cancel_scan(request: HttpRequest, org: str, scan_id: int) -> ScanOut:
    scan = _scan(request, org, scan_id, Role.MEMBER)
    return ScanOut.of(actions.cancel_scan(_principal(request), scan))


class FindingFilter(Schema):
    target_id: int | None = None
    severity: str | None = Field(None, max_length=10)
    state: str | None = Field(None, max_length=10)
    triage: str | None = Field(None, max_length=20)
    assignee: str | None = Field(None, max_length=150)
    overdue: bool = False
    limit: int = Field(100, ge=1, le=MAX_PAGE)


@router.get(BASE + "/findings", response=list[FindingOut])
def list_findings(
    request: HttpRequest, org: str, filters: Query[FindingFilter]
) -> list[FindingOut]:
    principal = _principal(request)
    organization = _org(request, org)
    findings = access.findings_for(principal).filter(target__project__organization=organization)
    if filters.target_id is not None:
        findings = findings.filter(target_id=filters.target_id)
    for field in ("severity", "state", "triage"):
        value = getattr(filters, field)
        if value is not None:
            findings = findings.filter(**{field: value})
    if filters.assignee is not None:
        findings = findings.filter(assignee__username=filters.assignee)
    if filters.overdue:
        findings = findings.filter(sla.overdue_q())
    findings = findings.select_related("assignee")[: filters.limit]
    return [FindingOut.of(f) for f in findings]


@router.get(BASE + "/findings/{finding_id}", response=FindingDetailOut)
def get_finding(request: HttpRequest, org: str, finding_id: int) -> FindingDetailOut:
    return FindingDetailOut.detail(_finding(request, org, finding_id))


def _assignee(organization: Organization, username: str | None) -> User | None:
    if not username:
        return None
    user = User.objects.filter(
        username=username, memberships__organization=organization, is_active=True
    ).first()
    if user is None:
        raise ValidationError({"assignee": ["The assignee must be a member of this organization."]})
    return user


@router.post(BASE + "/findings/{finding_id}/triage", response=FindingOut)
def triage_finding(request: HttpRequest, org: str, finding_id: int, body: TriageIn) -> FindingOut:
    finding = _finding(request, org, finding_id, Role.MEMBER)
    until: datetime | None = body.accepted_until
    triaged = services.triage_finding(
        _principal(request),
        finding,
        triage=body.triage,
        reason=body.reason,
        accepted_until=until,
        assignee=_assignee(finding.target.project.organization, body.assignee),
    )
    return FindingOut.of(triaged)


@router.post(BASE + "/findings/{finding_id}/comments", response={201: CommentOut})
def comment_finding(
    request: HttpRequest, org: str, finding_id: int, body: CommentIn
) -> Status[CommentOut]:
    finding = _finding(request, org, finding_id, Role.MEMBER)
    return Status(201, CommentOut.of(actions.add_comment(_principal(request), finding, body.body)))


# Registered last, so walkers of the OpenAPI document delete a target after using it.
@router.delete(BASE + "/scan-targets/{target_id}", response={204: None})
def delete_target(request: HttpRequest, org: str, target_id: int) -> Status[None]:
    target = _target(request, org, target_id, Role.ADMIN)
    actions.delete_target(_principal(request), target)
    return Status(204, None)


# Schedules and reports keep their own modules; their routes hang off this router.
router.add_router("", "bastion.scanning.schedule_api.router")
router.add_router("", "bastion.scanning.report_api.router")
