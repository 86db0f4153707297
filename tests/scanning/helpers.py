"""One target with a scan and a finding, for the route matrices (tests/api, tests/web)."""

from __future__ import annotations

from bastion.core.models import Project
from bastion.scanning.models import Finding, Scan, ScanState, Target


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
    return target, scan, finding
