"""Authorization as queries: every read goes through these helpers.

Anything outside the caller's organizations is reported as not found (404), never as
forbidden, so object ids of other tenants leak nothing. A role too low for a write is 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils import timezone

from bastion.core.context import Actor
from bastion.core.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    User,
    role_at_least,
)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user (roles from memberships) or an API token (one org, one role)."""

    actor: Actor
    user: User | None = None
    token: ApiToken | None = None
    # Trusted local code (the ``bastion`` CLI on the database, the scheduler) acting as owner,
    # of one organization when ``system_org_id`` is set, else of all. Never built from a request.
    is_system: bool = False
    system_org_id: int | None = None

    @classmethod
    def of_user(cls, user: User) -> Principal:
        return cls(actor=Actor.for_user(user), user=user)

    @classmethod
    def of_token(cls, token: ApiToken) -> Principal:
        return cls(actor=Actor.for_token(token), token=token)

    @classmethod
    def system(cls, what: str = "cli", organization: Organization | None = None) -> Principal:
        """An owner-like principal for trusted local code (whoever can run the CLI against the
        database already has every right over it). Audited as ``what``. Pass ``organization``
        to confine it to that organization, as the scheduler and org-scoped commands do."""
        return cls(
            actor=Actor.system(what),
            is_system=True,
            system_org_id=organization.pk if organization is not None else None,
        )

    def organizations(self) -> QuerySet[Organization]:
        if self.is_system:
            everything = Organization.objects.all()
            if self.system_org_id is not None:
                return everything.filter(pk=self.system_org_id)
            return everything
        if self.token is not None:
            return Organization.objects.filter(pk=self.token.organization_id)
        if self.user is None or not self.user.is_active:
            return Organization.objects.none()
        return Organization.objects.filter(memberships__user=self.user)

    def role_in(self, organization: Organization) -> str | None:
        if self.is_system:
            if self.system_org_id is not None and self.system_org_id != organization.pk:
                return None
            return str(Role.OWNER)
        if self.token is not None:
            return self.token.role if self.token.organization_id == organization.pk else None
        if self.user is None:
            return None
        return (
            Membership.objects.filter(organization=organization, user=self.user)
            .values_list("role", flat=True)
            .first()
        )


def require_role(principal: Principal, organization: Organization, minimum: str) -> str:
    role = principal.role_in(organization)
    if role is None:
        raise Http404("No such organization.")
    if not role_at_least(role, minimum):
        raise PermissionDenied(f"This needs the {minimum} role or higher; you are {role}.")
    return role


def organizations_for(principal: Principal) -> QuerySet[Organization]:
    return principal.organizations().order_by("name")


def roles_by_organization(principal: Principal) -> dict[int, str]:
    """The caller's role in each of its organizations, in one query."""
    if principal.is_system:
        return dict.fromkeys(Organization.objects.values_list("pk", flat=True), str(Role.OWNER))
    if principal.token is not None:
        return {principal.token.organization_id: principal.token.role}
    if principal.user is None or not principal.user.is_active:
        return {}
    return dict(
        Membership.objects.filter(user=principal.user).values_list("organization_id", "role")
    )


def get_organization_for(
    principal: Principal, slug: str, minimum: str = Role.VIEWER
) -> Organization:
    organization = principal.organizations().filter(slug=slug).first()
    if organization is None:
        raise Http404("No such organization.")
    require_role(principal, organization, minimum)
    return organization


def projects_for(
    principal: Principal, organization: Organization | None = None
) -> QuerySet[Project]:
    projects = Project.objects.filter(organization__in=principal.organizations())
    if organization is not None:
        projects = projects.filter(organization=organization)
    return projects.select_related("organization").order_by("organization__slug", "slug")


def get_project_for(
    principal: Principal, org_slug: str, project_slug: str, minimum: str = Role.VIEWER
) -> Project:
    project = projects_for(principal).filter(organization__slug=org_slug, slug=project_slug).first()
    if project is None:
        raise Http404("No such project.")
    require_role(principal, project.organization, minimum)
    return project


def members_for(principal: Principal, organization: Organization) -> QuerySet[Membership]:
    require_role(principal, organization, Role.VIEWER)
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__username")
    )


def api_tokens_for(principal: Principal, organization: Organization) -> QuerySet[ApiToken]:
    require_role(principal, organization, Role.ADMIN)
    return ApiToken.objects.filter(organization=organization).order_by("-created_at")


def get_membership_for(
    principal: Principal, organization: Organization, username: str
) -> Membership:
    membership = members_for(principal, organization).filter(user__username=username).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def invitations_for(principal: Principal, organization: Organization) -> QuerySet[Invitation]:
    require_role(principal, organization, Role.ADMIN)
    return Invitation.objects.filter(organization=organization).order_by("-created_at", "-pk")


def pending_invitations_for(
    principal: Principal, organization: Organization
) -> QuerySet[Invitation]:
    return invitations_for(principal, organization).filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )


def get_invitation_for(
    principal: Principal, organization: Organization, invitation_id: int
) -> Invitation:
    if principal.role_in(organization) is None:
        raise Http404("No such organization.")
    invitation = Invitation.objects.filter(organization=organization, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    require_role(principal, organization, Role.ADMIN)
    return invitation


def get_api_token_for(principal: Principal, organization: Organization, token_id: int) -> ApiToken:
    if principal.role_in(organization) is None:
        raise Http404("No such organization.")
    token = ApiToken.objects.filter(organization=organization, pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    require_role(principal, organization, Role.ADMIN)
    return token


def audit_events_for(principal: Principal, organization: Organization) -> QuerySet[AuditEvent]:
    """The organization's audit trail, newest first; admins and owners only."""
    require_role(principal, organization, Role.ADMIN)
    return (
        AuditEvent.objects.filter(organization=organization)
        .select_related("actor")
        .order_by("-seq")
    )


ModelT = TypeVar("ModelT", bound=Model)


def get_scoped_or_404(
    principal: Principal,
    scoped: QuerySet[ModelT],
    pk: int,
    *,
    org_path: str,
    what: str,
    minimum: str = Role.VIEWER,
    organization: Organization | None = None,
) -> ModelT:
    """One row of a queryset already scoped to the caller, by primary key, else 404; confined
    to ``organization`` when given (the org in the URL); 403 when the caller's role in the
    row's organization (reached through ``org_path``, e.g. ``"target__project__organization"``)
    is below ``minimum``."""
    if organization is not None:
        scoped = scoped.filter(**{org_path: organization})
    found = scoped.filter(pk=pk).first()
    if found is None:
        raise Http404(f"No such {what}.")
    owner: object = found
    for part in org_path.split("__"):
        owner = getattr(owner, part)
    assert isinstance(owner, Organization)
    require_role(principal, owner, minimum)
    return found
