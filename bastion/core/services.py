"""Named actions that change tenancy and accounts. Each runs in one transaction and audits itself."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.context import Actor
from bastion.core.models import (
    ApiToken,
    Invitation,
    LoginAttempt,
    Membership,
    Organization,
    Project,
    Role,
    User,
    role_at_least,
    slug_validator,
)
from bastion.core.tokens import hash_token, new_token

INVITATION_TTL = timedelta(days=7)
TOKEN_LAST_USED_PRECISION = timedelta(seconds=60)


def _validate_slug(slug: str, field: str = "slug") -> None:
    try:
        slug_validator(slug)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


# --- users --------------------------------------------------------------------------------


def create_user(
    actor: Actor,
    *,
    username: str,
    email: str,
    password: str | None = None,
    is_superuser: bool = False,
) -> tuple[User, str | None]:
    """Create a user. With no password, one is generated and returned (shown once)."""
    generated = None
    if password is None:
        generated = secrets.token_urlsafe(15)
        password = generated
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": ["A user with that username already exists."]})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": ["A user with that email already exists."]})
    user = User(username=username, email=email, is_superuser=is_superuser, is_staff=is_superuser)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    with transaction.atomic():
        user.save()
        audit.record(
            actor,
            "user.create",
            target=user,
            changes={"username": username, "email": email, "superuser": is_superuser},
        )
    return user, generated


def change_password(actor: Actor, user: User, new_password: str) -> None:
    validate_password(new_password, user)
    user.set_password(new_password)
    with transaction.atomic():
        user.save(update_fields=["password"])
        audit.record(actor, "user.password_change", target=user)


def begin_totp_setup(user: User) -> str:
    """A fresh TOTP secret for the user to scan; nothing is stored until confirmed."""
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Bastion")


def enable_totp(actor: Actor, user: User, secret: str, code: str) -> None:
    if not pyotp.TOTP(secret).verify(code.strip(), valid_window=1):
        raise ValidationError(
            {"code": ["That code does not match; check the clock on your device."]}
        )
    user.totp_secret_encrypted = crypto.encrypt(secret)
    user.totp_enabled = True
    with transaction.atomic():
        user.save(update_fields=["totp_secret_encrypted", "totp_enabled"])
        audit.record(actor, "user.totp_enable", target=user)


def disable_totp(actor: Actor, user: User) -> None:
    user.totp_secret_encrypted = ""
    user.totp_enabled = False
    with transaction.atomic():
        user.save(update_fields=["totp_secret_encrypted", "totp_enabled"])
        audit.record(actor, "user.totp_disable", target=user)


def verify_totp(user: User, code: str) -> bool:
    if not user.totp_enabled or not user.totp_secret_encrypted:
        return False
    secret = crypto.decrypt(user.totp_secret_encrypted)
    return bool(pyotp.TOTP(secret).verify(code.strip(), valid_window=1))


# --- login throttling ----------------------------------------------------------------------


def login_locked_out(username: str, ip: str | None) -> bool:
    """Too many recent failures for this username, or from this address."""
    config = settings.CONFIG
    since = timezone.now() - timedelta(seconds=config.login_lockout_s)
    recent = LoginAttempt.objects.filter(at__gte=since, succeeded=False)
    by_user = recent.filter(username=username.lower()).count()
    by_ip = recent.filter(ip=ip).count() if ip else 0
    return by_user >= config.login_max_failures or by_ip >= 4 * config.login_max_failures


def record_login(username: str, ip: str | None, succeeded: bool, user: User | None = None) -> None:
    with transaction.atomic():
        LoginAttempt.objects.create(username=username.lower(), ip=ip, succeeded=succeeded)
        if succeeded and user is not None:
            audit.record(Actor.for_user(user, ip), "user.login", target=user)
        elif not succeeded:
            audit.record(
                Actor(label=f"anonymous:{username[:100]}", ip=ip),
                "user.login_failed",
                object_type="core.user",
                object_repr=username[:300],
            )


# --- organizations and projects ------------------------------------------------------------


def create_organization(actor: Actor, *, name: str, slug: str, owner: User | None) -> Organization:
    _validate_slug(slug)
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": ["An organization with that slug already exists."]})
    with transaction.atomic():
        organization = Organization.objects.create(name=name or slug, slug=slug)
        audit.record(
            actor,
            "organization.create",
            organization=organization,
            target=organization,
            changes={"name": organization.name, "slug": slug},
        )
        if owner is not None:
            Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
            audit.record(
                actor,
                "member.add",
                organization=organization,
                target=owner,
                changes={"role": Role.OWNER},
            )
    return organization


def rename_organization(
    principal: Principal, organization: Organization, *, name: str
) -> Organization:
    """Change the display name; the slug (in every URL and API path) stays."""
    require_role(principal, organization, Role.ADMIN)
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError({"name": ["Give a name of 1 to 200 characters."]})
    before = organization.name
    if name == before:
        return organization
    with transaction.atomic():
        organization.name = name
        organization.save(update_fields=["name"])
        audit.record(
            principal.actor,
            "organization.rename",
            organization=organization,
            target=organization,
            changes={"name": {"before": before, "after": name}},
        )
    return organization


def create_project(
    principal: Principal, organization: Organization, *, slug: str, name: str, description: str = ""
) -> Project:
    require_role(principal, organization, Role.ADMIN)
    _validate_slug(slug)
    if Project.objects.filter(organization=organization, slug=slug).exists():
        raise ValidationError({"slug": ["A project with that slug already exists here."]})
    with transaction.atomic():
        project = Project.objects.create(
            organization=organization, slug=slug, name=name or slug, description=description
        )
        audit.record(
            principal.actor,
            "project.create",
            organization=organization,
            target=project,
            changes={"slug": slug, "name": project.name},
        )
    return project


def update_project(
    principal: Principal,
    project: Project,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Project:
    require_role(principal, project.organization, Role.ADMIN)
    before = {"name": project.name, "description": project.description}
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    after = {"name": project.name, "description": project.description}
    with transaction.atomic():
        project.save(update_fields=["name", "description"])
        audit.record(
            principal.actor,
            "project.update",
            organization=project.organization,
            target=project,
            changes=audit.diff(before, after),
        )
    return project


# --- members and invitations ---------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str

    @property
    def url(self) -> str:
        return f"{settings.CONFIG.public_url}/invitations/{self.token}/"


def _check_can_grant(principal: Principal, organization: Organization, role: str) -> None:
    own = require_role(principal, organization, Role.ADMIN)
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}."]})
    if not role_at_least(own, role):
        raise PermissionDenied(f"You cannot grant the {role} role as {own}.")


def invite_member(
    principal: Principal, organization: Organization, *, email: str, role: str
) -> IssuedInvitation:
    _check_can_grant(principal, organization, role)
    token = new_token("inv")
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        token_hash=token.digest,
        invited_by=principal.user,
        expires_at=timezone.now() + INVITATION_TTL,
    )
    invitation.full_clean(exclude=["invited_by", "accepted_by"])
    issued = IssuedInvitation(invitation=invitation, token=token.plaintext)
    with transaction.atomic():
        invitation.save()
        audit.record(
            principal.actor,
            "invitation.create",
            organization=organization,
            target=invitation,
            object_repr=email,
            changes={"email": email, "role": role},
        )
        transaction.on_commit(lambda: _send_invitation(issued))
    return issued


def _send_invitation(issued: IssuedInvitation) -> None:
    organization = issued.invitation.organization
    send_mail(
        subject=f"You are invited to {organization.name} on Bastion",
        message=(
            f"You have been invited to join {organization.name} as {issued.invitation.role}.\n\n"
            f"Accept the invitation: {issued.url}\n\nThe link expires in 7 days."
        ),
        from_email=None,
        recipient_list=[issued.invitation.email],
        fail_silently=True,
    )


def find_pending_invitation(token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(token_hash=hash_token(token))
        .first()
    )
    return invitation if invitation is not None and invitation.is_pending else None


def accept_invitation(actor: Actor, user: User, token: str) -> Membership:
    with transaction.atomic():
        invitation = find_pending_invitation(token)
        if invitation is None:
            raise ValidationError({"token": ["This invitation is invalid, used or expired."]})
        membership, created = Membership.objects.get_or_create(
            organization=invitation.organization, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(
            actor,
            "invitation.accept",
            organization=invitation.organization,
            target=invitation,
            object_repr=invitation.email,
            changes={"role": membership.role, "new_member": created},
        )
    return membership


def revoke_invitation(principal: Principal, invitation: Invitation) -> None:
    require_role(principal, invitation.organization, Role.ADMIN)
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit.record(
            principal.actor,
            "invitation.revoke",
            organization=invitation.organization,
            target=invitation,
            object_repr=invitation.email,
        )


def add_member(
    principal: Principal, organization: Organization, user: User, role: str
) -> Membership:
    _check_can_grant(principal, organization, role)
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ValidationError({"user": ["Already a member."]})
    with transaction.atomic():
        membership = Membership.objects.create(organization=organization, user=user, role=role)
        audit.record(
            principal.actor,
            "member.add",
            organization=organization,
            target=user,
            changes={"role": role},
        )
    return membership


def _would_leave_no_owner(membership: Membership) -> bool:
    if membership.role != Role.OWNER:
        return False
    owners = Membership.objects.filter(organization=membership.organization, role=Role.OWNER)
    return owners.count() <= 1


def change_member_role(principal: Principal, membership: Membership, role: str) -> Membership:
    _check_can_grant(principal, membership.organization, role)
    own = require_role(principal, membership.organization, Role.ADMIN)
    if not role_at_least(own, membership.role):
        raise PermissionDenied("You cannot change the role of someone above you.")
    if role != Role.OWNER and _would_leave_no_owner(membership):
        raise ValidationError({"role": ["An organization needs at least one owner."]})
    before = membership.role
    with transaction.atomic():
        membership.role = role
        membership.save(update_fields=["role"])
        audit.record(
            principal.actor,
            "member.role_change",
            organization=membership.organization,
            target=membership.user,
            changes={"role": {"before": before, "after": role}},
        )
    return membership


def remove_member(principal: Principal, membership: Membership) -> None:
    own = require_role(principal, membership.organization, Role.ADMIN)
    if not role_at_least(own, membership.role):
        raise PermissionDenied("You cannot remove someone above you.")
    if _would_leave_no_owner(membership):
        raise ValidationError({"role": ["An organization needs at least one owner."]})
    with transaction.atomic():
        audit.record(
            principal.actor,
            "member.remove",
            organization=membership.organization,
            target=membership.user,
            changes={"role": membership.role},
        )
        membership.delete()


# --- API tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiToken:
    token: ApiToken
    plaintext: str


def create_api_token(
    principal: Principal,
    organization: Organization,
    *,
    name: str,
    role: str,
    expires_at: datetime | None = None,
) -> IssuedApiToken:
    _check_can_grant(principal, organization, role)
    if not name.strip():
        raise ValidationError({"name": ["A token needs a name."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    secret = new_token("api")
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=organization,
            name=name.strip()[:100],
            role=role,
            prefix=secret.prefix,
            token_hash=secret.digest,
            created_by=principal.user,
            expires_at=expires_at,
        )
        audit.record(
            principal.actor,
            "api_token.create",
            organization=organization,
            target=token,
            changes={"name": token.name, "role": role, "expires_at": expires_at},
        )
    return IssuedApiToken(token=token, plaintext=secret.plaintext)


def revoke_api_token(principal: Principal, token: ApiToken) -> None:
    require_role(principal, token.organization, Role.ADMIN)
    if token.revoked_at is not None:
        return
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            principal.actor, "api_token.revoke", organization=token.organization, target=token
        )


def authenticate_api_token(plaintext: str) -> ApiToken | None:
    """The active token for this secret, or None. Marks it used (at most once a minute)."""
    if not plaintext.startswith("bstapi_"):
        return None
    token = (
        ApiToken.objects.select_related("organization", "created_by")
        .filter(token_hash=hash_token(plaintext))
        .first()
    )
    if token is None or not token.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
