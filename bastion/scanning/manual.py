"""Manual findings: what a person found (the human part of a penetration test), entered by
hand with evidence text and attachments. They take part in triage, comments, SLA and overdue
alerts like scanned ones; scans never mark them fixed — a person does (``set_manual_state``).

Attachments are stored through Django's storage API under random names, at most
``BASTION_SCAN_ATTACHMENT_MAX_BYTES`` (default 5 MiB) each and ``MAX_ATTACHMENTS`` per finding.
Their content type is sniffed from the bytes, never taken from the client; they are always
served with ``nosniff``, a sandboxing CSP and ``Content-Disposition`` (inline only for raster
images, so the finding page can show screenshots).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import FileResponse, Http404
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Role
from bastion.scanning.models import (
    Finding,
    FindingAttachment,
    FindingSource,
    FindingState,
    Target,
)
from bastion.scanning.sla import SEVERITIES

OWASP_TOP_10_2021 = (
    "A01:2021-Broken Access Control",
    "A02:2021-Cryptographic Failures",
    "A03:2021-Injection",
    "A04:2021-Insecure Design",
    "A05:2021-Security Misconfiguration",
    "A06:2021-Vulnerable and Outdated Components",
    "A07:2021-Identification and Authentication Failures",
    "A08:2021-Software and Data Integrity Failures",
    "A09:2021-Security Logging and Monitoring Failures",
    "A10:2021-Server-Side Request Forgery",
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
FINGERPRINT_VERSION = "manual:v1"
MAX_ATTACHMENTS = 20
ATTACHMENT_ENV = "BASTION_SCAN_ATTACHMENT_MAX_BYTES"
_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
_CWE_RE = re.compile(r"^CWE-[1-9][0-9]{0,4}$")
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})


@dataclass(frozen=True)
class ManualFindingInput:
    title: str
    severity: str
    url: str
    type: str = "manual"
    cwe: str = ""
    owasp: str = ""
    method: str = "GET"
    parameter: str = ""
    description: str = ""
    remediation: str = ""
    evidence: str = ""


def _validated(data: ManualFindingInput) -> dict[str, object]:
    errors: dict[str, list[str]] = {}
    title = data.title.strip()
    if not 0 < len(title) <= 300:
        errors["title"] = ["A title of 1 to 300 characters."]
    if data.severity not in SEVERITIES:
        errors["severity"] = [f"Choose one of {', '.join(SEVERITIES)}."]
    parts = urlsplit(data.url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(data.url) > 2000:
        errors["url"] = ["An http:// or https:// URL with a host (at most 2000 characters)."]
    if not _TYPE_RE.match(data.type):
        errors["type"] = ["A type of lower-case letters, digits and dashes (e.g. idor)."]
    cwe = data.cwe.strip().upper()
    if cwe and not _CWE_RE.match(cwe):
        errors["cwe"] = ["A CWE id like CWE-639, or nothing."]
    if data.owasp and data.owasp not in OWASP_TOP_10_2021:
        errors["owasp"] = ["Choose an OWASP Top 10 (2021) category, or nothing."]
    method = data.method.strip().upper()
    if method not in METHODS:
        errors["method"] = [f"Choose one of {', '.join(METHODS)}."]
    for field in ("description", "remediation", "evidence"):
        if len(getattr(data, field)) > 20_000:
            errors[field] = ["At most 20,000 characters."]
    if len(data.parameter) > 500:
        errors["parameter"] = ["At most 500 characters."]
    if errors:
        raise ValidationError(errors)
    return {
        "title": title,
        "severity": data.severity,
        "url": data.url.strip(),
        "type": data.type,
        "cwe": cwe,
        "owasp": data.owasp,
        "method": method,
        "parameter": data.parameter.strip(),
        "remediation": data.remediation.strip(),
        "evidence": data.evidence.strip(),
        "details": {"description": data.description.strip()},
    }


def create_manual_finding(
    principal: Principal, target: Target, data: ManualFindingInput
) -> Finding:
    organization = target.project.organization
    require_role(principal, organization, Role.MEMBER)
    fields = _validated(data)
    now = timezone.now()
    with transaction.atomic():
        finding = Finding.objects.create(
            target=target,
            fingerprint=f"{FINGERPRINT_VERSION}:{secrets.token_hex(16)}",
            fingerprint_version=FINGERPRINT_VERSION,
            confidence="certain",
            source=FindingSource.MANUAL,
            reported_by=principal.actor.label[:200],
            first_seen_at=now,
            last_seen_at=now,
            **fields,
        )
        audit.record(
            principal.actor,
            "finding.manual_create",
            organization=organization,
            target=finding,
            changes={k: v for k, v in fields.items() if k in ("title", "severity", "type", "url")},
        )
    return finding


def set_manual_state(principal: Principal, finding: Finding, state: str) -> Finding:
    """A person marks a manual finding fixed (retested by hand) or reopens it."""
    organization = finding.target.project.organization
    require_role(principal, organization, Role.MEMBER)
    if finding.source != FindingSource.MANUAL:
        raise ValidationError({"state": ["Scanned findings change state through scans."]})
    if state not in (FindingState.FIXED, FindingState.REOPENED):
        raise ValidationError({"state": ["Choose fixed or reopened."]})
    if (state == FindingState.FIXED) == (finding.state == FindingState.FIXED):
        raise ValidationError({"state": [f"The finding is already {finding.state}."]})
    with transaction.atomic():
        before = finding.state
        finding.state = state
        finding.fixed_at = timezone.now() if state == FindingState.FIXED else None
        finding.save(update_fields=["state", "fixed_at"])
        audit.record(
            principal.actor,
            "finding.manual_state",
            organization=organization,
            target=finding,
            changes={"before": before, "state": state},
        )
    return finding


def max_attachment_bytes() -> int:
    value = os.environ.get(ATTACHMENT_ENV, "").strip()
    if not value:
        return 5 * 1024 * 1024
    if not value.isdigit() or int(value) < 1:
        raise ImproperlyConfigured(f"{ATTACHMENT_ENV}: {value!r} is not a positive byte count")
    return int(value)


class AttachmentTooLarge(ValidationError):
    """An attachment over the size limit (the API answers 413)."""


def sniff(head: bytes) -> str:
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return content_type
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")).strip()
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(". ")
    return (cleaned or "attachment")[:200]


def add_attachment(
    principal: Principal, finding: Finding, upload: UploadedFile
) -> FindingAttachment:
    organization = finding.target.project.organization
    require_role(principal, organization, Role.MEMBER)
    limit = max_attachment_bytes()
    if upload.size is None or upload.size > limit:
        raise AttachmentTooLarge({"file": [f"An attachment is at most {limit} bytes."]})
    if upload.size == 0:
        raise ValidationError({"file": ["The file is empty."]})
    if finding.attachments.count() >= MAX_ATTACHMENTS:
        raise ValidationError({"file": [f"At most {MAX_ATTACHMENTS} attachments per finding."]})
    digest = hashlib.sha256()
    head = b""
    for chunk in upload.chunks():
        head = head or chunk[:4096]
        digest.update(chunk)
    upload.seek(0)
    name = _safe_name(upload.name or "")
    with transaction.atomic():
        attachment = FindingAttachment(
            finding=finding,
            name=name,
            content_type=sniff(head[:4096]),
            size=upload.size,
            sha256=digest.hexdigest(),
            uploaded_by=principal.actor.label[:200],
        )
        attachment.file.save(name, upload, save=False)
        attachment.save()
        audit.record(
            principal.actor,
            "finding.attachment_add",
            organization=organization,
            target=finding,
            changes={"attachment": attachment.pk, "name": name, "size": attachment.size},
        )
    return attachment


def get_attachment_or_404(finding: Finding, attachment_id: int) -> FindingAttachment:
    """One attachment of ``finding`` (already fetched through the scoped helpers), else 404."""
    attachment = finding.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment


def attachment_response(attachment: FindingAttachment) -> FileResponse:
    """The stored file with safe headers: sniffed type, nosniff, sandbox CSP, disposition."""
    inline = attachment.content_type in INLINE_TYPES
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=attachment.content_type,
        as_attachment=not inline,
        filename=attachment.name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
