"""One target with a scan and a finding, for the route matrices (tests/api, tests/web)."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile

from bastion.core.models import Project
from bastion.scanning.models import Finding, FindingAttachment, Scan, ScanState, Target
from tests.labs.server import LabApp


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


def scanned_target(
    app: LabApp, *, checks: tuple[str, ...] = (), cluster: str = "main"
) -> tuple[Target, Scan]:
    """An organization (owner ``ada``, org ``acme``, project ``shop``, a cluster) with a verified
    target on a served lab ``app`` and one stored scan of it."""
    from bastion.core.access import Principal
    from bastion.jobs import services as job_services
    from bastion.scanning import services
    from bastion.scanning.engine.report import to_json
    from tests.factories import make_org, make_project, make_user
    from tests.labs.server import serve
    from tests.scanning.conftest import run

    owner = make_user("ada")
    org = make_org(owner, slug="acme")
    principal = Principal.of_user(owner)
    project = make_project(org, slug="shop")
    job_services.create_cluster(principal, org, name=cluster)
    with serve(app) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        services.verify_target(principal, target)
        report = to_json(run(base, checks=checks))
    scan = Scan.objects.create(target=target, created_by="user:ada")
    services.record_scan_result(principal.actor, scan, report)
    return target, scan
