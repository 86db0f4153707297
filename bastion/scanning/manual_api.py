"""Manual findings, their evidence attachments, a manual finding's state, and the retest of
one finding, over /api/v1/. Handlers parse, fetch through ``scanning.access`` (other
organizations' objects are 404, a too-low role 403) and delegate to the named actions in
``manual`` and ``lifecycle``."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import FileResponse, HttpRequest
from ninja import File, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status
from pydantic import Field

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Role
from bastion.jobs.dispatch import DEFAULT_QUEUE
from bastion.jobs.services import get_cluster_for
from bastion.scanning import access, lifecycle, manual
from bastion.scanning.models import Finding, FindingAttachment
from bastion.scanning.schemas import FindingDetailOut, FindingOut, ScanOut

router = Router(tags=["scanning"])
BASE = "/organizations/{org}"


class ScanningManualFindingIn(Schema):
    title: str = Field(..., max_length=300)
    severity: str = Field(..., max_length=10, description="critical, high, medium, low or info")
    url: str = Field(..., max_length=2000)
    type: str = Field("manual", max_length=60, description="e.g. idor, business-logic")
    cwe: str = Field("", max_length=20, description="e.g. CWE-639")
    owasp: str = Field("", max_length=100, description="an OWASP Top 10 (2021) category")
    method: str = Field("GET", max_length=10)
    parameter: str = Field("", max_length=500)
    description: str = Field("", max_length=20_000)
    remediation: str = Field("", max_length=20_000)
    evidence: str = Field("", max_length=20_000)


class ScanningAttachmentOut(Schema):
    id: int
    name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: datetime

    @classmethod
    def of(cls, a: FindingAttachment) -> ScanningAttachmentOut:
        return cls(
            id=a.pk,
            name=a.name,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            uploaded_by=a.uploaded_by,
            created_at=a.created_at,
        )


class ScanningRetestIn(Schema):
    cluster: str = Field(..., max_length=100, description="The cluster whose agents run it.")
    queue: str = Field(DEFAULT_QUEUE, max_length=100)


class ScanningFindingStateIn(Schema):
    state: str = Field(..., max_length=10, description="fixed or reopened (manual findings)")


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


def _finding(
    request: HttpRequest, org: str, finding_id: int, minimum: str = Role.VIEWER
) -> Finding:
    organization = get_organization_for(_principal(request), org)
    return access.get_finding_for(_principal(request), finding_id, minimum, organization)


@router.post(BASE + "/scan-targets/{target_id}/findings", response={201: FindingDetailOut})
def create_manual_finding(
    request: HttpRequest, org: str, target_id: int, body: ScanningManualFindingIn
) -> Status[FindingDetailOut]:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    target = access.get_target_for(principal, target_id, Role.MEMBER, organization)
    finding = manual.create_manual_finding(
        principal, target, manual.ManualFindingInput(**body.dict())
    )
    return Status(201, FindingDetailOut.detail(finding))


@router.post(BASE + "/findings/{finding_id}/state", response=FindingOut)
def set_finding_state(
    request: HttpRequest, org: str, finding_id: int, body: ScanningFindingStateIn
) -> FindingOut:
    finding = _finding(request, org, finding_id, Role.MEMBER)
    return FindingOut.of(manual.set_manual_state(_principal(request), finding, body.state))


@router.post(BASE + "/findings/{finding_id}/retest", response={201: ScanOut})
def retest_finding(
    request: HttpRequest, org: str, finding_id: int, body: ScanningRetestIn
) -> Status[ScanOut]:
    principal = _principal(request)
    finding = _finding(request, org, finding_id, Role.MEMBER)
    cluster = get_cluster_for(
        principal, finding.target.project.organization, body.cluster, Role.MEMBER
    )
    scan = lifecycle.start_retest(principal, finding, cluster, queue=body.queue)
    return Status(201, ScanOut.of(scan))


@router.get(BASE + "/findings/{finding_id}/attachments", response=list[ScanningAttachmentOut])
def list_attachments(
    request: HttpRequest, org: str, finding_id: int
) -> list[ScanningAttachmentOut]:
    finding = _finding(request, org, finding_id)
    return [ScanningAttachmentOut.of(a) for a in finding.attachments.all()]


@router.post(BASE + "/findings/{finding_id}/attachments", response={201: ScanningAttachmentOut})
def add_attachment(
    request: HttpRequest, org: str, finding_id: int, file: File[UploadedFile | None] = None
) -> Status[ScanningAttachmentOut]:
    # The file is optional to ninja so that the finding's scope and role are checked first
    # (404/403 before any 400 about the body).
    finding = _finding(request, org, finding_id, Role.MEMBER)
    if file is None:
        raise ValidationError({"file": ["Send the file as multipart form field 'file'."]})
    try:
        attachment = manual.add_attachment(_principal(request), finding, file)
    except manual.AttachmentTooLarge as exc:
        raise RequestDataTooBig(" ".join(exc.messages)) from exc
    return Status(201, ScanningAttachmentOut.of(attachment))


@router.get(BASE + "/findings/{finding_id}/attachments/{attachment_id}")
def download_attachment(
    request: HttpRequest, org: str, finding_id: int, attachment_id: int
) -> FileResponse:
    """The file, with its sniffed content type and a safe Content-Disposition."""
    finding = _finding(request, org, finding_id)
    return manual.attachment_response(manual.get_attachment_or_404(finding, attachment_id))
