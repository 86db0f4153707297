"""The named actions of bastion.core.services: invitations, roles, API tokens and TOTP."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from bastion.core import access, audit, crypto, services
from bastion.core.access import Principal
from bastion.core.context import Actor
from bastion.core.models import ApiToken, AuditEvent, Invitation, Membership, Role
from tests.factories import make_member, make_org, make_user

pytestmark = pytest.mark.django_db


def _last(action: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).order_by("-seq").first()
    assert event is not None, f"no {action} audit row"
    return event


# --- invitations -----------------------------------------------------------------------------


def test_invitation_accept_makes_a_member_once() -> None:
    owner = make_user()
    org = make_org(owner)
    issued = services.invite_member(
        Principal.of_user(owner), org, email="new@example.test", role=Role.ADMIN
    )
    assert issued.url.endswith(f"/invitations/{issued.token}/")
    assert issued.invitation.token_hash != issued.token  # stored hashed
    newcomer = make_user()
    membership = services.accept_invitation(Actor.for_user(newcomer), newcomer, issued.token)
    assert membership.role == Role.ADMIN and membership.organization == org
    invitation = Invitation.objects.get(pk=issued.invitation.pk)
    assert not invitation.is_pending and invitation.accepted_by == newcomer
    assert _last("invitation.accept").changes == {"role": "admin", "new_member": True}
    with pytest.raises(ValidationError):
        services.accept_invitation(Actor.for_user(newcomer), newcomer, issued.token)


def test_expired_revoked_and_unknown_invitations_are_refused() -> None:
    owner = make_user()
    org = make_org(owner)
    principal = Principal.of_user(owner)
    expired = services.invite_member(principal, org, email="a@example.test", role=Role.MEMBER)
    Invitation.objects.filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked = services.invite_member(principal, org, email="b@example.test", role=Role.MEMBER)
    services.revoke_invitation(principal, revoked.invitation)
    user = make_user()
    for token in (expired.token, revoked.token, "bstinv_unknown"):
        with pytest.raises(ValidationError):
            services.accept_invitation(Actor.for_user(user), user, token)
    assert not Membership.objects.filter(user=user).exists()


def test_invitation_keeps_an_existing_members_role() -> None:
    owner = make_user()
    org = make_org(owner)
    viewer = make_member(org, Role.VIEWER)
    issued = services.invite_member(
        Principal.of_user(owner), org, email=viewer.email, role=Role.ADMIN
    )
    membership = services.accept_invitation(Actor.for_user(viewer), viewer, issued.token)
    assert membership.role == Role.VIEWER


def test_who_may_invite_whom() -> None:
    owner = make_user()
    org = make_org(owner)
    admin = Principal.of_user(make_member(org, Role.ADMIN))
    member = Principal.of_user(make_member(org, Role.MEMBER))
    with pytest.raises(PermissionDenied):
        services.invite_member(admin, org, email="x@example.test", role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.invite_member(member, org, email="x@example.test", role=Role.VIEWER)
    with pytest.raises(ValidationError):
        services.invite_member(admin, org, email="not-an-email", role=Role.MEMBER)
    stranger = Principal.of_user(make_user())
    with pytest.raises(Http404):
        services.invite_member(stranger, org, email="x@example.test", role=Role.VIEWER)
    assert not Invitation.objects.exists()


# --- roles -----------------------------------------------------------------------------------


def test_last_owner_cannot_be_demoted_or_removed() -> None:
    owner = make_user()
    org = make_org(owner)
    principal = Principal.of_user(owner)
    membership = Membership.objects.get(user=owner)
    with pytest.raises(ValidationError):
        services.change_member_role(principal, membership, Role.ADMIN)
    with pytest.raises(ValidationError):
        services.remove_member(principal, membership)
    second = make_member(org, Role.ADMIN)
    services.change_member_role(principal, Membership.objects.get(user=second), Role.OWNER)
    services.change_member_role(principal, membership, Role.MEMBER)  # now allowed
    assert Membership.objects.get(user=owner).role == Role.MEMBER
    assert _last("member.role_change").changes == {"role": {"before": "owner", "after": "member"}}


def test_admins_cannot_act_above_themselves() -> None:
    owner = make_user()
    org = make_org(owner)
    admin = Principal.of_user(make_member(org, Role.ADMIN))
    owner_membership = Membership.objects.get(user=owner)
    with pytest.raises(PermissionDenied):
        services.change_member_role(admin, owner_membership, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        services.remove_member(admin, owner_membership)
    member = Membership.objects.get(user=make_member(org, Role.MEMBER))
    with pytest.raises(PermissionDenied):
        services.change_member_role(admin, member, Role.OWNER)
    services.change_member_role(admin, member, Role.VIEWER)
    services.remove_member(admin, member)
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert _last("member.remove").changes == {"role": "viewer"}


def test_system_principal_is_owner_everywhere_and_audited_as_such() -> None:
    org = make_org(make_user())
    system = Principal.system("cli")
    assert system.role_in(org) == Role.OWNER
    assert list(access.organizations_for(system)) == [org]
    services.create_project(system, org, slug="web", name="Web")
    event = _last("project.create")
    assert event.actor_label == "cli" and event.actor is None


# --- API tokens ------------------------------------------------------------------------------


def test_token_expiry_revocation_and_last_use() -> None:
    owner = make_user()
    org = make_org(owner)
    principal = Principal.of_user(owner)
    soon = timezone.now() + timedelta(hours=1)
    issued = services.create_api_token(principal, org, name="ci", role=Role.MEMBER, expires_at=soon)
    assert issued.plaintext.startswith("bstapi_") and issued.token.prefix == issued.plaintext[:12]
    assert issued.plaintext not in str(_last("api_token.create").changes)

    found = services.authenticate_api_token(issued.plaintext)
    assert found is not None and found.pk == issued.token.pk
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at is not None

    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now())
    assert services.authenticate_api_token(issued.plaintext) is None

    other = services.create_api_token(principal, org, name="other", role=Role.VIEWER)
    services.revoke_api_token(principal, other.token)
    services.revoke_api_token(principal, other.token)  # idempotent: one audit row
    assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1
    assert services.authenticate_api_token(other.plaintext) is None
    assert services.authenticate_api_token("not-a-token") is None
    assert services.authenticate_api_token("bstapi_" + "x" * 43) is None


def test_token_creation_rules() -> None:
    owner = make_user()
    org = make_org(owner)
    admin = Principal.of_user(make_member(org, Role.ADMIN))
    with pytest.raises(PermissionDenied):
        services.create_api_token(admin, org, name="x", role=Role.OWNER)
    with pytest.raises(ValidationError):
        services.create_api_token(admin, org, name="  ", role=Role.MEMBER)
    with pytest.raises(ValidationError):
        services.create_api_token(
            admin, org, name="x", role=Role.MEMBER, expires_at=timezone.now() - timedelta(1)
        )
    with pytest.raises(ValidationError):
        services.create_api_token(admin, org, name="x", role="god")
    viewer_token = services.create_api_token(admin, org, name="ro", role=Role.VIEWER)
    as_viewer = Principal.of_token(viewer_token.token)
    with pytest.raises(PermissionDenied):
        services.create_api_token(as_viewer, org, name="escalate", role=Role.VIEWER)
    assert ApiToken.objects.count() == 1


# --- TOTP ------------------------------------------------------------------------------------


def test_totp_enable_verify_disable() -> None:
    user = make_user()
    actor = Actor.for_user(user)
    secret = services.begin_totp_setup(user)
    assert "otpauth://totp/" in services.totp_uri(user, secret)
    with pytest.raises(ValidationError):
        services.enable_totp(
            actor, user, secret, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        )
    assert not user.totp_enabled

    services.enable_totp(actor, user, secret, pyotp.TOTP(secret).now())
    user.refresh_from_db()
    assert user.totp_enabled
    assert secret not in user.totp_secret_encrypted  # encrypted at rest
    assert crypto.decrypt(user.totp_secret_encrypted) == secret
    assert services.verify_totp(user, pyotp.TOTP(secret).now())
    assert not services.verify_totp(user, "12345")
    wrong = pyotp.TOTP(pyotp.random_base32()).now()
    if wrong != pyotp.TOTP(secret).now():
        assert not services.verify_totp(user, wrong)

    services.disable_totp(actor, user)
    user.refresh_from_db()
    assert not user.totp_enabled and user.totp_secret_encrypted == ""
    assert not services.verify_totp(user, pyotp.TOTP(secret).now())
    actions = list(
        AuditEvent.objects.filter(object_id=str(user.pk), action__startswith="user.totp")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["user.totp_enable", "user.totp_disable"]
    assert audit.verify_chain().ok


def test_tampered_totp_secret_cannot_be_read() -> None:
    user = make_user()
    secret = services.begin_totp_setup(user)
    services.enable_totp(Actor.for_user(user), user, secret, pyotp.TOTP(secret).now())
    user.totp_secret_encrypted = user.totp_secret_encrypted[:-4] + "AAAA"
    with pytest.raises(crypto.DecryptionError):
        services.verify_totp(user, pyotp.TOTP(secret).now())
