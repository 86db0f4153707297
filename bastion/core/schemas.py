"""Typed contracts of the core API: organizations, projects, members, tokens and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator

from bastion.core.models import ApiToken, AuditEvent, Invitation, Membership, Organization, Project

RoleName = Literal["owner", "admin", "member", "viewer"]


def _to_utc(value: datetime) -> datetime:
    """Input times in UTC: naive ones are taken as UTC, and offsets the databases cannot store
    (PostgreSQL allows at most ±15:59) or that leave the representable range are refused."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("date out of range") from exc


# A point in time given by a client; stored and compared in UTC.
InputDatetime = Annotated[datetime, AfterValidator(_to_utc)]
Slug = str


class ErrorOut(Schema):
    """Every 4xx of the API: a sentence for people and, for invalid input, the field errors."""

    detail: str
    errors: Any = None


# --- organizations and projects -------------------------------------------------------------


class OrganizationIn(Schema):
    slug: Slug = Field(
        ..., min_length=1, max_length=50, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
    )
    name: str = Field("", max_length=200)


class OrganizationPatch(Schema):
    name: str = Field(..., min_length=1, max_length=200)


class OrganizationOut(Schema):
    slug: str
    name: str
    created_at: datetime
    role: RoleName | None = Field(None, description="The caller's role in this organization.")

    @staticmethod
    def of(organization: Organization, role: str | None) -> OrganizationOut:
        return OrganizationOut(
            slug=organization.slug,
            name=organization.name,
            created_at=organization.created_at,
            role=role,  # type: ignore[arg-type]
        )


class ProjectIn(Schema):
    slug: Slug = Field(
        ..., min_length=1, max_length=50, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
    )
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=10_000)


class ProjectPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)


class ProjectOut(Schema):
    organization: str
    slug: str
    name: str
    description: str
    created_at: datetime

    @staticmethod
    def of(project: Project) -> ProjectOut:
        return ProjectOut(
            organization=project.organization.slug,
            slug=project.slug,
            name=project.name,
            description=project.description,
            created_at=project.created_at,
        )


# --- members and invitations -----------------------------------------------------------------


class MemberOut(Schema):
    username: str
    email: str
    role: RoleName
    joined_at: datetime

    @staticmethod
    def of(membership: Membership) -> MemberOut:
        return MemberOut(
            username=membership.user.username,
            email=membership.user.email,
            role=membership.role,  # type: ignore[arg-type]
            joined_at=membership.created_at,
        )


class RoleIn(Schema):
    role: RoleName


class InvitationIn(Schema):
    email: str = Field(..., min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    role: RoleName = "member"


class InvitationOut(Schema):
    id: int
    email: str
    role: RoleName
    created_at: datetime
    expires_at: datetime
    invited_by: str | None

    @staticmethod
    def of(invitation: Invitation) -> InvitationOut:
        return InvitationOut(
            id=invitation.pk,
            email=invitation.email,
            role=invitation.role,  # type: ignore[arg-type]
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            invited_by=invitation.invited_by.username if invitation.invited_by else None,
        )


class InvitationCreated(InvitationOut):
    accept_url: str = Field(..., description="Shown once: send it to the invited person.")


# --- API tokens ------------------------------------------------------------------------------


class ApiTokenIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    role: RoleName = "member"
    expires_at: InputDatetime | None = None


class ApiTokenOut(Schema):
    id: int
    name: str
    role: RoleName
    prefix: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @staticmethod
    def of(token: ApiToken) -> ApiTokenOut:
        return ApiTokenOut(
            id=token.pk,
            name=token.name,
            role=token.role,  # type: ignore[arg-type]
            prefix=token.prefix,
            created_by=token.created_by.username if token.created_by else None,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
            active=token.is_active,
        )


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(..., description="The secret, shown once; only its hash is stored.")


# --- audit log -------------------------------------------------------------------------------


class AuditFilters(Schema):
    actor: str | None = Field(None, max_length=200, description="Actor label, e.g. user:alice")
    action: str | None = Field(None, max_length=100, description="e.g. project.create")
    object_type: str | None = Field(None, max_length=100, description="e.g. core.project")
    since: InputDatetime | None = Field(None, description="Only events at or after this time.")
    until: InputDatetime | None = Field(None, description="Only events before this time.")


class AuditEventOut(Schema):
    seq: int
    created_at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    changes: dict[str, Any]
    ip: str | None
    hash: str

    @staticmethod
    def of(event: AuditEvent) -> AuditEventOut:
        return AuditEventOut(
            seq=event.seq,
            created_at=event.created_at,
            actor=event.actor_label,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            object_repr=event.object_repr,
            changes=event.changes if isinstance(event.changes, dict) else {},
            ip=event.ip,
            hash=event.hash,
        )


class AuditPage(Schema):
    items: list[AuditEventOut]
    next_before: int | None = Field(
        None, description="Pass as `before` to get the next (older) page; null on the last page."
    )


class ChainReportOut(Schema):
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str
