"""What a report says, read once from the database into plain frozen values.

A scan report covers the findings that scan saw; a target report covers the target's active
findings now (its latest state). Both carry the executive summary (counts by severity, the
trend over the previous scans, SLA status) and the scope and method of the scan they rest on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from bastion.scanning import sla
from bastion.scanning.models import Finding, Scan, ScanState, Target

SEVERITIES = sla.SEVERITIES
TREND_SCANS = 10
DONE_STATES = (ScanState.FINISHED, ScanState.FAILED)


@dataclass(frozen=True)
class TrendPoint:
    scan_id: int
    at: datetime
    counts: dict[str, int]  # findings that scan reported, by severity


@dataclass(frozen=True)
class SlaStatus:
    overdue: int = 0
    due_within_7_days: int = 0
    within_sla: int = 0
    no_sla: int = 0
    days: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckRun:
    name: str
    status: str
    message: str
    duration_s: float


@dataclass(frozen=True)
class ReportFinding:
    row: Finding
    due_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class ReportData:
    target: Target
    scan: Scan | None  # the scan the report covers, or the latest one for a target report
    subject: str  # "scan" or "target"
    generated_at: datetime
    findings: list[ReportFinding]
    counts: dict[str, int]
    trend: list[TrendPoint]
    sla: SlaStatus
    checks: list[CheckRun]

    @property
    def duration_s(self) -> float | None:
        scan = self.scan
        if scan is None or scan.started_at is None or scan.finished_at is None:
            return None
        return (scan.finished_at - scan.started_at).total_seconds()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _trend(target: Target, upto: Scan | None) -> list[TrendPoint]:
    """Findings by severity that each of the last scans (up to ``upto``) reported."""
    scans = Scan.objects.filter(target=target, state__in=DONE_STATES, finished_at__isnull=False)
    if upto is not None and upto.finished_at is not None:
        scans = scans.filter(finished_at__lte=upto.finished_at)
    recent = list(scans.order_by("-finished_at", "-pk")[:TREND_SCANS])[::-1]
    points = []
    for scan in recent:
        assert scan.finished_at is not None
        counts = scan.severity_counts or {}
        points.append(
            TrendPoint(scan.pk, scan.finished_at, {s: int(counts.get(s, 0)) for s in SEVERITIES})
        )
    return points


def _sla_status(findings: list[ReportFinding], now: datetime) -> SlaStatus:
    overdue = soon = within = none = 0
    for item in findings:
        if item.due_at is None:
            none += 1
        elif item.overdue:
            overdue += 1
        elif (item.due_at - now).days < 7:
            soon += 1
        else:
            within += 1
    return SlaStatus(overdue, soon, within, none, sla.sla_days())


def _checks(scan: Scan | None) -> list[CheckRun]:
    if scan is None:
        return []
    return [
        CheckRun(
            name=str(c.get("name", "")),
            status=str(c.get("status", "")),
            message=str(c.get("message", "") or ""),
            duration_s=float(c.get("duration_s") or 0.0),
        )
        for c in scan.checks or []
        if isinstance(c, dict)
    ]


def collect(target: Target, scan: Scan | None) -> ReportData:
    """Everything a report of ``scan`` (or of ``target``'s latest state) shows."""
    now = timezone.now()
    if scan is not None:
        rows = Finding.objects.filter(last_seen_scan=scan)
        basis: Scan | None = scan
    else:
        rows = Finding.objects.filter(target=target, state__in=sla.ACTIVE)
        basis = (
            Scan.objects.filter(target=target, state__in=DONE_STATES)
            .order_by("-finished_at", "-pk")
            .first()
        )
    days = sla.sla_days()
    findings = []
    for row in rows.select_related("assignee").order_by("pk"):
        due = sla.due_at(row, days)
        findings.append(ReportFinding(row, due, due is not None and due < now))
    findings.sort(key=lambda f: (_severity_rank(f.row.severity), f.row.type, f.row.url))
    counts = Counter(f.row.severity for f in findings)
    return ReportData(
        target=target,
        scan=basis,
        subject="scan" if scan is not None else "target",
        generated_at=now,
        findings=findings,
        counts={s: counts.get(s, 0) for s in SEVERITIES},
        trend=_trend(target, basis),
        sla=_sla_status(findings, now),
        checks=_checks(basis),
    )
