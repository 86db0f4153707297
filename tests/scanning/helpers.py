"""One target with a scan and a finding, for the route matrices (tests/api, tests/web)."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile

from bastion.core.models import Project
from bastion.scanning.models import Finding, FindingAttachment, Scan, ScanState, Target


def scanning_world(project: Project) -> tuple[Target, Scan, Finding]:
    target = Target.objects.create(
        project=project, name="shop", base_url="http://127.0.0.1:9/", environment="staging"
    )
    scan = Scan.objects.create(target=target, state=ScanState.FINISHED, requests_sent=3)
    finding = Finding.objects.create(
        target=target,
        fingerprint=f"finding:v1:{project.slug}",
        type="missing-hsts",
        title="Missing HSTS",
        severity="medium",
        url=target.base_url,
        evidence="no Strict-Transport-Security header",
        first_seen_scan=scan,
        last_seen_scan=scan,
    )
    scanning_attachment(finding)
    return target, scan, finding


def attachment_of(finding_id: int) -> int:
    """The id of the evidence file ``scanning_world`` put on its finding (for the matrices)."""
    return FindingAttachment.objects.filter(finding_id=finding_id).values_list("pk", flat=True)[0]


def scanning_attachment(finding: Finding) -> FindingAttachment:
    """An evidence file on ``finding`` (stored through Django's storage API)."""
    attachment = FindingAttachment(
        finding=finding,
        name="proof.txt",
        content_type="text/plain",
        size=5,
        sha256=hashlib.sha256(b"proof").hexdigest(),
    )
    attachment.file.save("proof.txt", ContentFile(b"proof"), save=False)
    attachment.save()
    return attachment
