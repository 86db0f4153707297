"""The reports a verification step attaches to its jobs, and the figures it shows.

A scan step's job keeps the engine's ``scan-result.json`` (uploaded by the agent); the step adds
``scan-report.sarif`` made from it. A browser step adds ``junit.xml`` over the run's results;
the run's screenshots and videos are already its jobs' artifacts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count

from bastion.browser.junit import junit_of as junit_of  # re-exported: verification.py
from bastion.jobs.models import Artifact, Job
from bastion.scanning.engine.definitions import Severity
from bastion.scanning.engine.findings import Finding as EngineFinding
from bastion.scanning.engine.report import to_sarif
from bastion.scanning.engine.runner import CheckOutcome, ScanResult
from bastion.scanning.models import Finding, Scan, Triage

logger = logging.getLogger(__name__)

SARIF_ARTIFACT = "scan-report.sarif"
JUNIT_ARTIFACT = "junit.xml"
SEVERITY_ORDER = [s.label for s in sorted(Severity, reverse=True)]


def attach(job: Job, path: str, data: bytes, content_type: str) -> Artifact:
    """Store a report the server made as an artifact of ``job`` (once: same path, same job)."""
    existing = Artifact.objects.filter(job=job, path=path).first()
    if existing is not None:
        return existing
    artifact = Artifact(
        job=job,
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
    )
    artifact.file.save(path.rsplit("/", 1)[-1], ContentFile(data), save=False)
    try:
        with transaction.atomic():
            artifact.save()
    except IntegrityError:
        artifact.file.delete(save=False)
        return Artifact.objects.get(job=job, path=path)
    return artifact


# --- scans ------------------------------------------------------------------------------------


def _engine_finding(data: Mapping[str, Any]) -> EngineFinding:
    finding = EngineFinding(
        type=str(data["type"]),
        url=str(data["url"]),
        method=str(data.get("method") or "GET"),
        parameter=data.get("parameter") or None,
        evidence=str(data.get("evidence") or ""),
        confidence=data.get("confidence") or "firm",
        request=str(data.get("request") or ""),
        response=str(data.get("response") or ""),
        check=str(data.get("check") or ""),
        details=dict(data.get("details") or {}),
    )
    severity = Severity.parse(str(data.get("severity") or finding.severity.label))
    if severity != finding.definition.severity:
        return replace(finding, severity_override=severity)
    return finding


def result_from_report(report: Mapping[str, Any]) -> ScanResult:
    """The engine's result back from its JSON report (``engine.report.to_json``)."""
    return ScanResult(
        target=str(report.get("target") or ""),
        profile=str(report.get("profile") or ""),
        started_at=datetime.fromisoformat(str(report["started_at"])),
        duration_s=float(report.get("duration_s") or 0.0),
        requests_sent=int(report.get("requests_sent") or 0),
        findings=tuple(_engine_finding(f) for f in report.get("findings") or []),
        outcomes=tuple(
            CheckOutcome(
                name=str(c.get("name")),
                status=c.get("status") or "ok",
                message=str(c.get("message") or ""),
                duration_s=float(c.get("duration_s") or 0.0),
            )
            for c in report.get("checks") or []
        ),
        error=report.get("error") or None,
    )


def attach_scan_reports(job: Job, report: Mapping[str, Any] | None) -> list[str]:
    """SARIF next to the JSON report; returns the report artifacts the job now has."""
    if report is not None and report.get("started_at"):
        try:
            sarif = to_sarif(result_from_report(report))
        except (KeyError, ValueError, TypeError) as exc:
            logger.warning("scan job %s: no SARIF from its report: %s", job.pk, exc)
        else:
            body = json.dumps(sarif, indent=2).encode()
            attach(job, SARIF_ARTIFACT, body, "application/sarif+json")
    return sorted(
        Artifact.objects.filter(job=job, path__in=[SARIF_ARTIFACT, "scan-result.json"]).values_list(
            "path", flat=True
        )
    )


def findings_by_severity(scan: Scan) -> dict[str, int]:
    """Findings the scan saw that nobody triaged away (false positive, accepted risk)."""
    rows = (
        Finding.objects.filter(last_seen_scan=scan)
        .exclude(triage__in=[Triage.FALSE_POSITIVE, Triage.ACCEPTED_RISK])
        .values("severity")
        .annotate(n=Count("pk"))
    )
    counts = {row["severity"]: row["n"] for row in rows}
    return {label: counts.get(label, 0) for label in SEVERITY_ORDER}


def at_or_above(counts: Mapping[str, int], fail_on: str) -> int:
    """How many findings gate the step (0 with ``fail_on: none``)."""
    if fail_on == "none":
        return 0
    floor = Severity.parse(fail_on)
    return sum(n for label, n in counts.items() if Severity.parse(label) >= floor)


# --- browser runs -----------------------------------------------------------------------------

# JUnit over a run's stored results lives with the browser runs (the run page serves it too).
