"""A report's machine-readable forms: JSON, CSV and SARIF 2.1.0, from stored findings."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from bastion import __version__ as bastion_version
from bastion.scanning.engine.definitions import DEFINITIONS, Severity
from bastion.scanning.engine.report import LEVELS, SARIF_SCHEMA, SECURITY_SEVERITY
from bastion.scanning.reports.data import ReportData, ReportFinding

CSV_COLUMNS = (
    "id", "severity", "type", "title", "cwe", "owasp", "confidence", "url", "method",
    "parameter", "evidence", "state", "triage", "assignee", "first_seen_at", "last_seen_at",
    "due_at", "overdue", "remediation", "fingerprint",
)  # fmt: skip
# Spreadsheet programs run cells that start with these as formulas (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def finding_dict(item: ReportFinding) -> dict[str, Any]:
    f = item.row
    return {
        "id": f.pk,
        "severity": f.severity,
        "type": f.type,
        "title": f.title,
        "cwe": f.cwe,
        "owasp": f.owasp,
        "confidence": f.confidence,
        "url": f.url,
        "method": f.method,
        "parameter": f.parameter or None,
        "evidence": f.evidence,
        "request": f.request,
        "response": f.response,
        "remediation": f.remediation,
        "state": f.state,
        "triage": f.triage,
        "assignee": f.assignee.username if f.assignee else None,
        "first_seen_at": _iso(f.first_seen_at),
        "last_seen_at": _iso(f.last_seen_at),
        "due_at": _iso(item.due_at),
        "overdue": item.overdue,
        "fingerprint": f.fingerprint,
    }


def to_json(data: ReportData) -> dict[str, Any]:
    scan = data.scan
    return {
        "tool": "bastion",
        "version": bastion_version,
        "generated_at": data.generated_at.isoformat(),
        "subject": data.subject,
        "target": {
            "id": data.target.pk,
            "name": data.target.name,
            "base_url": data.target.base_url,
            "environment": data.target.environment,
            "include": data.target.include,
            "exclude": data.target.exclude,
            "verification": data.target.verification_method or None,
            "verified_at": _iso(data.target.verified_at),
        },
        "scan": None
        if scan is None
        else {
            "id": scan.pk,
            "profile": scan.profile,
            "state": scan.state,
            "started_at": _iso(scan.started_at),
            "finished_at": _iso(scan.finished_at),
            "duration_s": data.duration_s,
            "requests_sent": scan.requests_sent,
            "error": scan.error or None,
            "checks": [c.__dict__ for c in data.checks],
        },
        "summary": {
            "counts": data.counts,
            "total": data.total,
            "sla": data.sla.__dict__,
            "trend": [
                {"scan_id": p.scan_id, "at": p.at.isoformat(), "counts": p.counts}
                for p in data.trend
            ],
        },
        "findings": [finding_dict(item) for item in data.findings],
    }


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(data: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in data.findings:
        row = finding_dict(item)
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _severity(value: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError:
        return Severity.INFO


def _rule(item: ReportFinding) -> dict[str, Any]:
    f = item.row
    known = DEFINITIONS.get(f.type)
    severity = _severity(f.severity)
    cwe = re.sub(r"\D", "", f.cwe)
    rule: dict[str, Any] = {
        "id": f.type,
        "name": "".join(p.capitalize() for p in re.split(r"[^a-zA-Z0-9]+", f.type)),
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": known.description if known else f.title},
        "help": {"text": f.remediation or (known.remediation if known else "")},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {
            "tags": [t for t in ("security", f.cwe, f.owasp) if t],
            "security-severity": SECURITY_SEVERITY[severity],
        },
    }
    if cwe:
        rule["helpUri"] = f"https://cwe.mitre.org/data/definitions/{cwe}.html"
    return rule


def _result(item: ReportFinding, rule_index: int) -> dict[str, Any]:
    f = item.row
    severity = _severity(f.severity)
    message = f.title + (f" ({f.parameter})" if f.parameter else "")
    if f.evidence:
        message += f": {f.evidence}"
    return {
        "ruleId": f.type,
        "ruleIndex": rule_index,
        "level": LEVELS[severity],
        "message": {"text": message},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.url}}}],
        "partialFingerprints": {f.fingerprint_version: f.fingerprint.rsplit(":", 1)[-1]},
        "webRequest": {"method": f.method, "target": f.url},
        "baselineState": "new" if f.state == "new" else "unchanged",
        "properties": {
            "severity": f.severity,
            "security-severity": SECURITY_SEVERITY[severity],
            "confidence": f.confidence,
            "cwe": f.cwe,
            "owasp": f.owasp,
            "parameter": f.parameter,
            "state": f.state,
            "triage": f.triage,
            "due_at": _iso(item.due_at),
        },
    }


def to_sarif(data: ReportData) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for item in data.findings:
        if item.row.type not in index:
            index[item.row.type] = len(rules)
            rules.append(_rule(item))
        results.append(_result(item, index[item.row.type]))
    scan = data.scan
    invocation: dict[str, Any] = {"executionSuccessful": scan is None or not scan.error}
    if scan is not None and scan.started_at and scan.finished_at:
        invocation["startTimeUtc"] = scan.started_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        invocation["endTimeUtc"] = scan.finished_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    invocation["toolExecutionNotifications"] = [
        {"level": "warning", "message": {"text": f"check {c.name}: {c.status}: {c.message}"}}
        for c in data.checks
        if c.status != "ok"
    ]
    subject = f"scan-{scan.pk}" if data.subject == "scan" and scan else f"target-{data.target.pk}"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Bastion",
                        "semanticVersion": bastion_version,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"bastion/{data.target.pk}/{subject}"},
                "invocations": [invocation],
                "originalUriBaseIds": {"TARGET": {"uri": data.target.base_url.rstrip("/") + "/"}},
                "results": results,
            }
        ],
    }
