"""Organizations, projects, members, invitations, API tokens and the audit log over /api/v1/.

Handlers parse and delegate: reads go through ``bastion.core.access`` (other organizations'
objects are 404, a too-low role is 403), writes through the audited actions of
``bastion.core.services``.
"""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router
from ninja.responses import Status

from bastion.core import access, audit, services
from bastion.core.access import Principal
from bastion.core.audit_export import export_audit, filter_audit
from bastion.core.models import Role
from bastion.core.schemas import (
    ApiTokenCreated,
    ApiTokenIn,
    ApiTokenOut,
    AuditEventOut,
    AuditFilters,
    AuditPage,
    ChainReportOut,
    ErrorOut,
    InvitationCreated,
    InvitationIn,
    InvitationOut,
    MemberOut,
    OrganizationIn,
    OrganizationOut,
    OrganizationPatch,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    RoleIn,
)

router = Router(tags=["organizations"])

# The error responses every authenticated operation can give (see bastion.api for the mapping).
READ_ERRORS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
WRITE_ERRORS: dict[int, Any] = {400: ErrorOut, 415: ErrorOut, **READ_ERRORS}
ORG = "/organizations/{org}"


def principal_of(request: HttpRequest) -> Principal:
    principal = getattr(request, "auth", None)
    if not isinstance(principal, Principal):  # pragma: no cover - ninja auth guarantees it
        raise PermissionDenied("Not authenticated.")
    return principal


# --- organizations ---------------------------------------------------------------------------


@router.get("/organizations", response={200: list[OrganizationOut], **READ_ERRORS})
def list_organizations(request: HttpRequest) -> list[OrganizationOut]:
    principal = principal_of(request)
    roles = access.roles_by_organization(principal)
    return [OrganizationOut.of(o, roles.get(o.pk)) for o in access.organizations_for(principal)]


@router.post("/organizations", response={201: OrganizationOut, **WRITE_ERRORS})
def create_organization(request: HttpRequest, data: OrganizationIn) -> Status[OrganizationOut]:
    """Create an organization; the calling user becomes its owner. Not open to API tokens."""
    principal = principal_of(request)
    if principal.user is None:
        raise PermissionDenied("API tokens cannot create organizations; sign in as a user.")
    organization = services.create_organization(
        principal.actor, name=data.name, slug=data.slug, owner=principal.user
    )
    return Status(201, OrganizationOut.of(organization, Role.OWNER))


@router.get(ORG, response={200: OrganizationOut, **READ_ERRORS})
def get_organization(request: HttpRequest, org: str) -> OrganizationOut:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    return OrganizationOut.of(organization, principal.role_in(organization))


@router.patch(ORG, response={200: OrganizationOut, **WRITE_ERRORS})
def rename_organization(request: HttpRequest, org: str, data: OrganizationPatch) -> OrganizationOut:
    """Rename the organization (admins and owners); its slug never changes."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    services.rename_organization(principal, organization, name=data.name)
    return OrganizationOut.of(organization, principal.role_in(organization))


# --- projects --------------------------------------------------------------------------------


@router.get(ORG + "/projects", response={200: list[ProjectOut], **READ_ERRORS}, tags=["projects"])
def list_projects(request: HttpRequest, org: str) -> list[ProjectOut]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    return [ProjectOut.of(p) for p in access.projects_for(principal, organization)]


@router.post(ORG + "/projects", response={201: ProjectOut, **WRITE_ERRORS}, tags=["projects"])
def create_project(request: HttpRequest, org: str, data: ProjectIn) -> Status[ProjectOut]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    project = services.create_project(
        principal, organization, slug=data.slug, name=data.name, description=data.description
    )
    return Status(201, ProjectOut.of(project))


@router.get(
    ORG + "/projects/{project}", response={200: ProjectOut, **READ_ERRORS}, tags=["projects"]
)
def get_project(request: HttpRequest, org: str, project: str) -> ProjectOut:
    return ProjectOut.of(access.get_project_for(principal_of(request), org, project))


@router.patch(
    ORG + "/projects/{project}", response={200: ProjectOut, **WRITE_ERRORS}, tags=["projects"]
)
def update_project(request: HttpRequest, org: str, project: str, data: ProjectPatch) -> ProjectOut:
    principal = principal_of(request)
    found = access.get_project_for(principal, org, project)
    updated = services.update_project(
        principal, found, name=data.name, description=data.description
    )
    return ProjectOut.of(updated)


# --- members ---------------------------------------------------------------------------------


@router.get(ORG + "/members", response={200: list[MemberOut], **READ_ERRORS}, tags=["members"])
def list_members(request: HttpRequest, org: str) -> list[MemberOut]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    return [MemberOut.of(m) for m in access.members_for(principal, organization)]


@router.patch(
    ORG + "/members/{username}", response={200: MemberOut, **WRITE_ERRORS}, tags=["members"]
)
def change_member_role(request: HttpRequest, org: str, username: str, data: RoleIn) -> MemberOut:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    membership = access.get_membership_for(principal, organization, username)
    return MemberOut.of(services.change_member_role(principal, membership, data.role))


@router.delete(ORG + "/members/{username}", response={204: None, **WRITE_ERRORS}, tags=["members"])
def remove_member(request: HttpRequest, org: str, username: str) -> Status[None]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    membership = access.get_membership_for(principal, organization, username)
    services.remove_member(principal, membership)
    return Status(204, None)


# --- invitations -----------------------------------------------------------------------------


@router.get(
    ORG + "/invitations", response={200: list[InvitationOut], **READ_ERRORS}, tags=["members"]
)
def list_invitations(request: HttpRequest, org: str) -> list[InvitationOut]:
    """Pending invitations (not accepted, revoked or expired)."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    invitations = access.pending_invitations_for(principal, organization)
    return [InvitationOut.of(i) for i in invitations.select_related("invited_by")]


@router.post(
    ORG + "/invitations", response={201: InvitationCreated, **WRITE_ERRORS}, tags=["members"]
)
def create_invitation(
    request: HttpRequest, org: str, data: InvitationIn
) -> Status[InvitationCreated]:
    """Invite someone by email; the accept URL is in the answer once (and in the email)."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    issued = services.invite_member(principal, organization, email=data.email, role=data.role)
    out = InvitationOut.of(issued.invitation)
    return Status(201, InvitationCreated(**out.model_dump(), accept_url=issued.url))


@router.delete(
    ORG + "/invitations/{invitation_id}", response={204: None, **WRITE_ERRORS}, tags=["members"]
)
def revoke_invitation(request: HttpRequest, org: str, invitation_id: int) -> Status[None]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    services.revoke_invitation(
        principal, access.get_invitation_for(principal, organization, invitation_id)
    )
    return Status(204, None)


# --- API tokens ------------------------------------------------------------------------------


@router.get(ORG + "/tokens", response={200: list[ApiTokenOut], **READ_ERRORS}, tags=["tokens"])
def list_tokens(request: HttpRequest, org: str) -> list[ApiTokenOut]:
    """Every token of the organization, without secrets (admins)."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    tokens = access.api_tokens_for(principal, organization).select_related("created_by")
    return [ApiTokenOut.of(t) for t in tokens]


@router.post(ORG + "/tokens", response={201: ApiTokenCreated, **WRITE_ERRORS}, tags=["tokens"])
def create_token(request: HttpRequest, org: str, data: ApiTokenIn) -> Status[ApiTokenCreated]:
    """Create a token; its secret is in this answer once and never again."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    issued = services.create_api_token(
        principal, organization, name=data.name, role=data.role, expires_at=data.expires_at
    )
    out = ApiTokenOut.of(issued.token)
    return Status(201, ApiTokenCreated(**out.model_dump(), token=issued.plaintext))


@router.delete(ORG + "/tokens/{token_id}", response={204: None, **WRITE_ERRORS}, tags=["tokens"])
def revoke_token(request: HttpRequest, org: str, token_id: int) -> Status[None]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    services.revoke_api_token(
        principal, access.get_api_token_for(principal, organization, token_id)
    )
    return Status(204, None)


# --- audit log -------------------------------------------------------------------------------


@router.get(ORG + "/audit", response={200: AuditPage, 400: ErrorOut, **READ_ERRORS}, tags=["audit"])
def list_audit(
    request: HttpRequest,
    org: str,
    filters: Query[AuditFilters],
    before: int | None = Query(None, ge=1, le=2**62, description="Events with seq below this."),
    limit: int = Query(50, ge=1, le=500),
) -> AuditPage:
    """The organization's audit trail, newest first (admins), filtered and paginated by seq."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    events = filter_audit(access.audit_events_for(principal, organization), filters)
    if before is not None:
        events = events.filter(seq__lt=before)
    page = list(events[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return AuditPage(
        items=[AuditEventOut.of(e) for e in page],
        next_before=page[-1].seq if more and page else None,
    )


@router.get(
    ORG + "/audit/export",
    response={200: None, 400: ErrorOut, **READ_ERRORS},
    tags=["audit"],
    openapi_extra={
        "responses": {
            200: {
                "description": "The filtered audit trail as a download.",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {
                        "schema": {"type": "array", "items": AuditEventOut.json_schema()}
                    },
                },
            }
        }
    },
)
def export_audit_log(
    request: HttpRequest,
    org: str,
    filters: Query[AuditFilters],
    format: Literal["csv", "json"] = Query("json"),
) -> StreamingHttpResponse:
    """The whole filtered audit trail of the organization, oldest first, as CSV or JSON (admins)."""
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    events = filter_audit(access.audit_events_for(principal, organization), filters)
    return export_audit(events.order_by("seq"), format, filename=f"audit-{organization.slug}")


@router.get(ORG + "/audit/verify", response={200: ChainReportOut, **READ_ERRORS}, tags=["audit"])
def verify_audit_chain(request: HttpRequest, org: str) -> ChainReportOut:
    """Check the hash chain of the whole audit log (admins)."""
    principal = principal_of(request)
    access.get_organization_for(principal, org, minimum=Role.ADMIN)
    report = audit.verify_chain()
    return ChainReportOut(
        ok=report.ok,
        checked=report.checked,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
    )
