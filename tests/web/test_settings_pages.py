"""Settings pages: projects, members and invitations, API tokens, clusters and agent tokens."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from bastion.core.models import ApiToken, AuditEvent, Invitation, Membership, Project, Role
from bastion.core.tokens import hash_token
from bastion.jobs.models import AgentToken, Cluster, Queue
from tests.factories import make_member
from tests.web.conftest import World, login_client, make_cluster

pytestmark = pytest.mark.django_db


def _flash(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def test_create_project(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/settings/projects/"
    response = owner_client.post(url, {"name": "Shop", "slug": "shop"}, follow=True)
    assert response.status_code == 200
    assert "Project Shop created." in _flash(response)
    assert Project.objects.filter(organization=world.org, slug="shop").exists()
    assert b"shop" in owner_client.get(f"/o/{world.org.slug}/settings/").content


def test_rename_organization(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/settings/organization/"
    response = owner_client.post(url, {"name": "Acme Corp"}, follow=True)
    assert "Organization renamed to Acme Corp." in _flash(response)
    world.org.refresh_from_db()
    assert world.org.name == "Acme Corp"
    assert AuditEvent.objects.filter(action="organization.rename").count() == 1
    rows = AuditEvent.objects.count()
    response = owner_client.post(url, {"name": ""})
    assert response.status_code == 400
    assert response.context["org_form"].errors["name"]
    world.org.refresh_from_db()
    assert world.org.name == "Acme Corp" and AuditEvent.objects.count() == rows


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "Shop", "slug": "Not A Slug"}, "slug"),
        ({"name": "", "slug": "shop"}, "name"),
    ],
)
def test_create_project_with_bad_input_changes_nothing(
    world: World, owner_client: Client, data: dict[str, str], field: str
) -> None:
    audit_rows = AuditEvent.objects.count()
    response = owner_client.post(f"/o/{world.org.slug}/settings/projects/", data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert b'class="field has-error"' in response.content
    assert not Project.objects.filter(organization=world.org).exists()
    assert AuditEvent.objects.count() == audit_rows


def test_duplicate_project_slug_is_a_field_error(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/settings/projects/"
    owner_client.post(url, {"name": "Shop", "slug": "shop"})
    response = owner_client.post(url, {"name": "Shop 2", "slug": "shop"})
    assert response.status_code == 400
    assert "already exists" in str(response.context["form"].errors["slug"])
    assert Project.objects.filter(organization=world.org).count() == 1


def test_invite_member_emails_a_link_that_lists_as_pending(
    world: World, owner_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    url = f"/o/{world.org.slug}/settings/members/invite/"
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            url, {"email": "new@example.test", "role": "admin"}, follow=True
        )
    assert response.status_code == 200
    invitation = Invitation.objects.get(organization=world.org)
    assert invitation.role == "admin"
    assert len(mail.outbox) == 1 and "/invitations/bstinv_" in mail.outbox[0].body
    assert b"new@example.test" in response.content  # pending list


def test_invite_with_bad_email_changes_nothing(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/settings/members/invite/"
    response = owner_client.post(url, {"email": "not-an-email", "role": "member"})
    assert response.status_code == 400
    assert response.context["form"].errors["email"]
    response = owner_client.post(url, {"email": "a@example.test", "role": "emperor"})
    assert response.status_code == 400 and response.context["form"].errors["role"]
    assert not Invitation.objects.exists() and not mail.outbox


def test_admin_cannot_invite_an_owner(world: World) -> None:
    admin = make_member(world.org, Role.ADMIN)
    url = f"/o/{world.org.slug}/settings/members/invite/"
    response = login_client(admin).post(url, {"email": "x@example.test", "role": "owner"})
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_revoke_invitation(world: World, owner_client: Client) -> None:
    owner_client.post(
        f"/o/{world.org.slug}/settings/members/invite/",
        {"email": "r@example.test", "role": "member"},
    )
    invitation = Invitation.objects.get()
    response = owner_client.post(
        f"/o/{world.org.slug}/settings/invitations/{invitation.pk}/revoke/", follow=True
    )
    assert "The invitation for r@example.test was revoked." in _flash(response)
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_change_role_and_remove_member(world: World, owner_client: Client) -> None:
    member = make_member(world.org, Role.MEMBER)
    membership = Membership.objects.get(user=member)
    base = f"/o/{world.org.slug}/settings/members/{membership.pk}"
    response = owner_client.post(f"{base}/role/", {"role": "admin"}, follow=True)
    assert f"{member.username} is now admin." in _flash(response)
    membership.refresh_from_db()
    assert membership.role == "admin"
    bad = owner_client.post(f"{base}/role/", {"role": "king"})
    assert bad.status_code == 400
    membership.refresh_from_db()
    assert membership.role == "admin"
    response = owner_client.post(f"{base}/remove/", follow=True)
    assert response.status_code == 200
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_last_owner_cannot_be_demoted_or_removed(world: World, owner_client: Client) -> None:
    membership = Membership.objects.get(user=world.owner)
    base = f"/o/{world.org.slug}/settings/members/{membership.pk}"
    response = owner_client.post(f"{base}/role/", {"role": "member"})
    assert response.status_code == 400
    assert b"at least one owner" in response.content
    assert owner_client.post(f"{base}/remove/").status_code == 400
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_api_token_is_shown_once_then_only_its_prefix(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/settings/tokens/new/"
    response = owner_client.post(url, {"name": "deploy", "role": "member", "expires": "30"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    match = re.search(rb"bstapi_[A-Za-z0-9_-]+", response.content)
    assert match is not None
    plaintext = match.group().decode()
    token = ApiToken.objects.get(organization=world.org)
    assert token.token_hash == hash_token(plaintext) and token.expires_at is not None
    listing = owner_client.get(f"/o/{world.org.slug}/settings/tokens/")
    assert plaintext.encode() not in listing.content
    assert token.prefix.encode() in listing.content


def test_api_token_with_bad_input_changes_nothing(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/settings/tokens/new/"
    assert owner_client.post(url, {"name": "", "role": "member"}).status_code == 400
    assert (
        owner_client.post(url, {"name": "x", "role": "member", "expires": "9"}).status_code == 400
    )
    assert not ApiToken.objects.exists()


def test_revoke_api_token(world: World, owner_client: Client) -> None:
    owner_client.post(f"/o/{world.org.slug}/settings/tokens/new/", {"name": "t", "role": "viewer"})
    token = ApiToken.objects.get()
    response = owner_client.post(
        f"/o/{world.org.slug}/settings/tokens/{token.pk}/revoke/", follow=True
    )
    assert "API token t revoked; it stops working now." in _flash(response)
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_clusters_queues_and_agent_tokens(world: World, owner_client: Client) -> None:
    base = f"/o/{world.org.slug}/settings/clusters"
    response = owner_client.post(f"{base}/new/", {"name": "edge", "description": "DMZ"})
    assert response.status_code == 302 and response["Location"] == f"{base}/edge/"
    cluster = Cluster.objects.get(organization=world.org, name="edge")
    assert owner_client.post(f"{base}/new/", {"name": "edge"}).status_code == 400
    assert owner_client.post(f"{base}/new/", {"name": "Bad Name"}).status_code == 400
    assert Cluster.objects.filter(organization=world.org).count() == 1

    assert owner_client.post(f"{base}/edge/queues/", {"key": "deploy"}).status_code == 302
    assert owner_client.post(f"{base}/edge/queues/", {"key": "deploy"}).status_code == 400
    assert sorted(Queue.objects.filter(cluster=cluster).values_list("key", flat=True)) == [
        "default",
        "deploy",
    ]

    response = owner_client.post(f"{base}/edge/tokens/", {"description": "rack 1"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    match = re.search(rb"bstagt_[A-Za-z0-9_-]+", response.content)
    assert match is not None
    token = AgentToken.objects.get(cluster=cluster)
    assert token.token_hash == hash_token(match.group().decode())
    page = owner_client.get(f"{base}/edge/")
    assert match.group() not in page.content and token.prefix.encode() in page.content

    response = owner_client.post(f"{base}/edge/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_unknown_cluster_is_404(world: World, owner_client: Client) -> None:
    make_cluster(world.org, "real")
    assert owner_client.get(f"/o/{world.org.slug}/settings/clusters/ghost/").status_code == 404
    response = owner_client.post(
        f"/o/{world.org.slug}/settings/clusters/ghost/queues/", {"key": "q"}
    )
    assert response.status_code == 404


def test_admins_only_see_controls_for_people_they_can_manage(world: World) -> None:
    admin = make_member(world.org, Role.ADMIN)
    owner_membership = Membership.objects.get(user=world.owner)
    admin_membership = Membership.objects.get(user=admin)
    response = login_client(admin).get(f"/o/{world.org.slug}/settings/members/")
    html = response.content.decode()
    assert f"/members/{owner_membership.pk}/role/" not in html
    assert f"/members/{admin_membership.pk}/role/" in html
    assert '<option value="owner"' not in html
    assert "Only an owner can change this" in html
