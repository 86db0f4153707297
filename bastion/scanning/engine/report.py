"""Scan results as JSON and as SARIF 2.1.0."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bastion import __version__ as bastion_version
from bastion.scanning.engine.definitions import DEFINITIONS, Severity
from bastion.scanning.engine.findings import FINGERPRINT_VERSION
from bastion.scanning.engine.runner import ScanResult

# Prefix of the log line in which the agent's scan executor hands its JSON report over.
RESULT_MARKER = "[bastion-scan-result] "
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "7.5",
    Severity.MEDIUM: "5.0",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def to_json(result: ScanResult) -> dict[str, Any]:
    return {
        "tool": "bastion",
        "version": bastion_version,
        "target": result.target,
        "profile": result.profile,
        "started_at": result.started_at.isoformat(),
        "duration_s": round(result.duration_s, 3),
        "requests_sent": result.requests_sent,
        "error": result.error,
        "fingerprint_version": FINGERPRINT_VERSION,
        "findings": [f.as_dict() for f in result.findings],
        "checks": [
            {
                "name": o.name,
                "status": o.status,
                "message": o.message,
                "duration_s": round(o.duration_s, 3),
            }
            for o in result.outcomes
        ],
        "coverage": {name: list(keys) for name, keys in result.coverage.items()},
    }


def _rule_name(type_id: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", type_id))


def to_sarif(result: ScanResult) -> dict[str, Any]:
    used = sorted({f.type for f in result.findings})
    index = {type_id: i for i, type_id in enumerate(used)}
    rules = []
    for type_id in used:
        d = DEFINITIONS[type_id]
        rules.append(
            {
                "id": type_id,
                "name": _rule_name(type_id),
                "shortDescription": {"text": d.title},
                "fullDescription": {"text": d.description},
                "help": {"text": d.remediation},
                "helpUri": f"https://cwe.mitre.org/data/definitions/{d.cwe}.html",
                "defaultConfiguration": {"level": LEVELS[d.severity]},
                "properties": {
                    "tags": ["security", d.cwe_id, d.owasp],
                    "security-severity": SECURITY_SEVERITY[d.severity],
                },
            }
        )
    results = []
    for finding in result.findings:
        message = finding.definition.title
        if finding.parameter:
            message += f" ({finding.parameter})"
        if finding.evidence:
            message += f": {finding.evidence}"
        results.append(
            {
                "ruleId": finding.type,
                "ruleIndex": index[finding.type],
                "level": LEVELS[finding.severity],
                "message": {"text": message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": finding.url}}}],
                "partialFingerprints": {FINGERPRINT_VERSION: finding.fingerprint.rsplit(":", 1)[1]},
                "webRequest": {"method": finding.method, "target": finding.url},
                "properties": {
                    "severity": finding.severity.label,
                    "security-severity": SECURITY_SEVERITY[finding.severity],
                    "confidence": finding.confidence,
                    "cwe": finding.definition.cwe_id,
                    "owasp": finding.definition.owasp,
                    "parameter": finding.parameter,
                    "check": finding.check,
                },
            }
        )
    end = result.started_at.timestamp() + result.duration_s
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
                "automationDetails": {
                    "id": f"bastion/{result.profile}/{result.started_at:%Y-%m-%dT%H:%M:%SZ}"
                },
                "invocations": [
                    {
                        "executionSuccessful": result.error is None,
                        "startTimeUtc": result.started_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "endTimeUtc": datetime.fromtimestamp(end, UTC).strftime(
                            "%Y-%m-%dT%H:%M:%S.%fZ"
                        ),
                        "toolExecutionNotifications": [
                            {
                                "level": "warning",
                                "message": {"text": f"check {o.name}: {o.status}: {o.message}"},
                            }
                            for o in result.outcomes
                            if o.status != "ok"
                        ]
                        + (
                            [{"level": "error", "message": {"text": result.error}}]
                            if result.error
                            else []
                        ),
                    }
                ],
                "originalUriBaseIds": {"TARGET": {"uri": result.target.rstrip("/") + "/"}},
                "results": results,
            }
        ],
    }
