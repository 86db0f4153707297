"""A finding as the engine reports it, and its versioned fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from bastion.scanning.engine.definitions import FindingType, Severity, definition

FINGERPRINT_VERSION = "finding:v1"
Confidence = Literal["tentative", "firm", "certain"]
EXCERPT_CHARS = 2_000


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def coverage_key(url: str) -> str:
    """A URL as scans compare it: lower-case scheme and host, no default port, the path, no
    query or fragment. A scan *covered* a finding's URL for a check when the check fetched (or
    reported on) a URL with the same key; only then can the finding's absence mean "fixed"."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()  # as finding:v1 has it (IPv6 without brackets)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


@dataclass(frozen=True)
class Finding:
    """One occurrence. Metadata (title, CWE...) comes from the type's definition."""

    type: str
    url: str
    method: str = "GET"
    parameter: str | None = None
    evidence: str = ""
    confidence: Confidence = "firm"
    severity_override: Severity | None = None
    request: str = ""
    response: str = ""
    check: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        definition(self.type)  # fail loudly on a typo in a check

    @property
    def definition(self) -> FindingType:
        return definition(self.type)

    @property
    def severity(self) -> Severity:
        return self.severity_override or self.definition.severity

    @property
    def fingerprint(self) -> str:
        """``finding:v1:<sha256>`` over type, method, normalized URL and parameter.

        v1 normalization: lower-case scheme and host, drop default ports and the fragment,
        keep the path, keep query parameter *names* sorted (values change between scans).
        """
        names = sorted(
            {name for name, _ in parse_qsl(urlsplit(self.url).query, keep_blank_values=True)}
        )
        key = "\n".join(
            [
                self.type,
                self.method.upper(),
                coverage_key(self.url),
                "&".join(names),
                self.parameter or "",
            ]
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{FINGERPRINT_VERSION}:{digest}"

    def as_dict(self) -> dict[str, Any]:
        d = self.definition
        return {
            "type": self.type,
            "title": d.title,
            "severity": self.severity.label,
            "confidence": self.confidence,
            "cwe": d.cwe_id,
            "owasp": d.owasp,
            "url": self.url,
            "method": self.method,
            "parameter": self.parameter,
            "evidence": self.evidence,
            "request": self.request,
            "response": self.response,
            "remediation": d.remediation,
            "check": self.check,
            "details": dict(self.details),
            "fingerprint": self.fingerprint,
        }
