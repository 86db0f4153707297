"""Named actions on reports: request one (queued for the task worker), generate it (the task),
and open it for download. Each writes its audit row in the transaction that changes state."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal, get_scoped_or_404, require_role
from bastion.core.context import Actor
from bastion.core.models import Organization, Role
from bastion.core.pdf import render_pdf
from bastion.scanning.models import ReportFormat, ReportState, Scan, ScanReport, Target
from bastion.scanning.reports import data as report_data
from bastion.scanning.reports import formats
from bastion.scanning.reports.html import render_report_html

log = logging.getLogger(__name__)
MAX_PENDING_PER_TARGET = 5
WORKER = Actor.system("report-worker")
CONTENT_TYPES = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.JSON: "application/json",
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.SARIF: "application/sarif+json",
}
EXTENSIONS = {
    ReportFormat.PDF: "pdf",
    ReportFormat.JSON: "json",
    ReportFormat.CSV: "csv",
    ReportFormat.SARIF: "sarif",
}


def reports_for(principal: Principal, target: Target | None = None) -> QuerySet[ScanReport]:
    rows = ScanReport.objects.filter(target__project__organization__in=principal.organizations())
    if target is not None:
        rows = rows.filter(target=target)
    return rows.select_related("target__project__organization", "scan").order_by(
        "-created_at", "-pk"
    )


def get_report_for(
    principal: Principal,
    report_id: int,
    minimum: str = Role.VIEWER,
    organization: Organization | None = None,
) -> ScanReport:
    """One report of the caller's organizations, else 404; 403 below ``minimum``."""
    return get_scoped_or_404(
        principal,
        reports_for(principal),
        report_id,
        org_path="target__project__organization",
        what="report",
        minimum=minimum,
        organization=organization,
    )


def request_report(principal: Principal, target: Target, scan: Scan | None, fmt: str) -> ScanReport:
    """Queue a report of ``scan`` (or of ``target``'s latest state when ``scan`` is None)."""
    from bastion.scanning.tasks import render_scan_report

    organization = target.project.organization
    require_role(principal, organization, Role.MEMBER)
    if fmt not in ReportFormat.values:
        raise ValidationError({"format": [f"Choose one of {', '.join(ReportFormat.values)}."]})
    if scan is not None and scan.target_id != target.pk:
        raise ValidationError({"scan": ["That scan is not of this target."]})
    pending = ScanReport.objects.filter(
        target=target, state__in=(ReportState.QUEUED, ReportState.RUNNING)
    )
    if pending.count() >= MAX_PENDING_PER_TARGET:
        raise ValidationError(
            {"format": [f"{MAX_PENDING_PER_TARGET} reports of this target are still rendering."]}
        )
    with transaction.atomic():
        report = ScanReport.objects.create(
            target=target,
            scan=scan,
            format=fmt,
            stage="waiting for a worker",
            requested_by=principal.actor.label[:200],
        )
        audit.record(
            principal.actor,
            "scan_report.request",
            organization=organization,
            target=report,
            changes={"format": fmt, "scan": scan.pk if scan else None, "target": target.pk},
        )
        transaction.on_commit(lambda: render_scan_report.enqueue(report.pk))
    return report


def _progress(report: ScanReport, percent: int, stage: str) -> None:
    ScanReport.objects.filter(pk=report.pk).update(
        state=ReportState.RUNNING, progress=percent, stage=stage
    )


@dataclass(frozen=True)
class Rendered:
    content: bytes
    name: str


def _render(report: ScanReport, step: Callable[[int, str], None]) -> Rendered:
    step(10, "reading findings")
    data = report_data.collect(report.target, report.scan)
    fmt = ReportFormat(report.format)
    if fmt == ReportFormat.PDF:
        step(30, "laying out the document")
        html = render_report_html(data)
        step(50, "printing the PDF in Chromium")
        content = render_pdf(html, footer_label=f"Bastion — {report}")
    elif fmt == ReportFormat.CSV:
        content = formats.to_csv(data).encode("utf-8-sig")
    else:
        document = formats.to_sarif(data) if fmt == ReportFormat.SARIF else formats.to_json(data)
        content = json.dumps(document, indent=2, ensure_ascii=False).encode()
    subject = f"scan-{report.scan_id}" if report.scan_id else "latest"
    name = f"{report.target.name}-{subject}-report-{report.pk}.{EXTENSIONS[fmt]}"
    return Rendered(content, name)


def generate(report_id: int) -> ScanReport | None:
    """Render and store one report (the task's body); a failure is recorded on the report."""
    # Claimed by compare-and-set: of two workers given the same report, one renders it.
    claimed = ScanReport.objects.filter(pk=report_id, state=ReportState.QUEUED).update(
        state=ReportState.RUNNING, progress=5, stage="starting"
    )
    if not claimed:
        return None  # already taken by another worker, or deleted with its target
    row = ScanReport.objects.select_related("target__project__organization", "scan").get(
        pk=report_id
    )
    try:
        rendered = _render(row, lambda percent, stage: _progress(row, percent, stage))
    except Exception as exc:  # any failure must end the report, with its reason, and be logged
        log.exception("report %s failed to render", row.pk)
        return _finish_failed(row, f"{type(exc).__name__}: {exc}"[:2000])
    _progress(row, 90, "storing")
    with transaction.atomic():
        row.file.save(_safe_name(rendered.name), ContentFile(rendered.content), save=False)
        row.size = len(rendered.content)
        row.sha256 = hashlib.sha256(rendered.content).hexdigest()
        row.state, row.progress, row.stage = ReportState.READY, 100, "ready"
        row.finished_at = timezone.now()
        row.save(
            update_fields=["file", "size", "sha256", "state", "progress", "stage", "finished_at"]
        )
        audit.record(
            WORKER,
            "scan_report.ready",
            organization=row.target.project.organization,
            target=row,
            changes={"format": row.format, "size": row.size, "sha256": row.sha256},
        )
    return row


def _finish_failed(row: ScanReport, error: str) -> ScanReport:
    with transaction.atomic():
        row.state, row.stage, row.error = ReportState.FAILED, "failed", error
        row.finished_at = timezone.now()
        row.save(update_fields=["state", "stage", "error", "finished_at"])
        audit.record(
            WORKER,
            "scan_report.failed",
            organization=row.target.project.organization,
            target=row,
            changes={"format": row.format, "error": error[:300]},
        )
    return row


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:150]


def download(principal: Principal, report: ScanReport) -> FileResponse:
    """The stored file as an attachment; who downloaded which report is audited."""
    organization = report.target.project.organization
    require_role(principal, organization, Role.VIEWER)
    if report.state != ReportState.READY or not report.file:
        raise ValidationError({"report": ["This report is not ready yet."]})
    with transaction.atomic():
        audit.record(
            principal.actor,
            "scan_report.download",
            organization=organization,
            target=report,
            changes={"format": report.format, "sha256": report.sha256},
        )
    name = (report.file.name or "report").rsplit("/", 1)[-1]
    fmt = ReportFormat(report.format)
    response = FileResponse(
        report.file.open("rb"), as_attachment=True, filename=name, content_type=CONTENT_TYPES[fmt]
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
