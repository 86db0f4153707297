"""Scan reports over /api/v1/: request one for a scan or a target (202, rendered by a task),
follow its progress, download the file. Handlers parse, fetch scoped, and delegate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.scanning import access
from bastion.scanning.models import ScanReport
from bastion.scanning.reports import service

router = Router(tags=["scanning"])
BASE = "/organizations/{org}"
MAX_PAGE = 100
# The stored file as it was rendered: its media type follows the report's format.
DOWNLOAD_TYPES = ("application/pdf", "application/json", "text/csv", "application/sarif+json")
BINARY: dict[int, Any] = {200: {"content": {t: {"schema": {}} for t in DOWNLOAD_TYPES}}}


class ScanReportIn(Schema):
    format: str = Field("pdf", max_length=10, examples=["pdf", "json", "csv", "sarif"])


class ScanReportOut(Schema):
    id: int
    target_id: int
    scan_id: int | None
    format: str
    state: str
    progress: int
    stage: str
    size: int
    sha256: str
    error: str
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    download: str | None

    @classmethod
    def of(cls, report: ScanReport) -> ScanReportOut:
        org = report.target.project.organization.slug
        ready = report.state == "ready"
        return cls(
            id=report.pk,
            target_id=report.target_id,
            scan_id=report.scan_id,
            format=report.format,
            state=report.state,
            progress=report.progress,
            stage=report.stage,
            size=report.size,
            sha256=report.sha256,
            error=report.error,
            requested_by=report.requested_by,
            created_at=report.created_at,
            finished_at=report.finished_at,
            download=f"/api/v1/organizations/{org}/scan-reports/{report.pk}/download"
            if ready
            else None,
        )


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


def _report(request: HttpRequest, org: str, report_id: int) -> ScanReport:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    return service.get_report_for(principal, report_id, Role.VIEWER, organization)


@router.post(BASE + "/scans/{scan_id}/reports", response={202: ScanReportOut})
def request_scan_report(
    request: HttpRequest, org: str, scan_id: int, body: ScanReportIn
) -> Status[ScanReportOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    scan = access.get_scan_for(principal, scan_id, Role.MEMBER, organization)
    report = service.request_report(principal, scan.target, scan, body.format)
    report.refresh_from_db()
    return Status(202, ScanReportOut.of(report))


@router.post(BASE + "/scan-targets/{target_id}/reports", response={202: ScanReportOut})
def request_target_report(
    request: HttpRequest, org: str, target_id: int, body: ScanReportIn
) -> Status[ScanReportOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    target = access.get_target_for(principal, target_id, Role.MEMBER, organization)
    report = service.request_report(principal, target, None, body.format)
    report.refresh_from_db()
    return Status(202, ScanReportOut.of(report))


@router.get(BASE + "/scan-targets/{target_id}/reports", response=list[ScanReportOut])
def list_reports(request: HttpRequest, org: str, target_id: int) -> list[ScanReportOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    target = access.get_target_for(principal, target_id, Role.VIEWER, organization)
    return [ScanReportOut.of(r) for r in service.reports_for(principal, target)[:MAX_PAGE]]


@router.get(BASE + "/scan-reports/{report_id}", response=ScanReportOut)
def get_report(request: HttpRequest, org: str, report_id: int) -> ScanReportOut:
    return ScanReportOut.of(_report(request, org, report_id))


@router.get(BASE + "/scan-reports/{report_id}/download", openapi_extra={"responses": BINARY})
def download_report(request: HttpRequest, org: str, report_id: int) -> FileResponse:
    return service.download(_principal(request), _report(request, org, report_id))
