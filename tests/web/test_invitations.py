"""Accepting an invitation: signed in, by signing up, or with a bad link."""

from __future__ import annotations

import pytest
from django.test import Client

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.models import Invitation, Membership, User
from tests.factories import make_user
from tests.web.conftest import World, login_client

pytestmark = pytest.mark.django_db


def _invite(world: World, email: str = "guest@example.test", role: str = "member") -> str:
    issued = services.invite_member(
        Principal.of_user(world.owner), world.org, email=email, role=role
    )
    return f"/invitations/{issued.token}/"


def test_signed_in_user_accepts(world: World) -> None:
    url = _invite(world, role="viewer")
    guest = make_user()
    client = login_client(guest)
    page = client.get(url)
    assert page.status_code == 200 and b"Accept invitation" in page.content
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == f"/o/{world.org.slug}/"
    assert Membership.objects.get(organization=world.org, user=guest).role == "viewer"
    # The link is single-use.
    assert client.get(url).status_code == 404


def test_anonymous_signs_up_and_joins(world: World) -> None:
    url = _invite(world)
    client = Client()
    page = client.get(url)
    assert page.status_code == 200 and b"guest@example.test" in page.content
    response = client.post(
        url,
        {"username": "guest", "email": "guest@example.test", "password": "a-long-passphrase-1"},
    )
    assert response.status_code == 302
    user = User.objects.get(username="guest")
    assert Membership.objects.filter(organization=world.org, user=user).exists()
    assert client.get(f"/o/{world.org.slug}/").status_code == 200


def test_bad_signup_creates_no_user_and_keeps_the_invitation(world: World) -> None:
    url = _invite(world)
    make_user("taken")
    client = Client()
    for data, field in [
        (
            {"username": "taken", "email": "g@example.test", "password": "a-long-passphrase-1"},
            "username",
        ),
        ({"username": "newbie", "email": "g@example.test", "password": "short"}, "password"),
        ({"username": "newbie", "email": "nope", "password": "a-long-passphrase-1"}, "email"),
    ]:
        response = client.post(url, data)
        assert response.status_code == 400
        assert response.context["form"].errors[field]
    assert not User.objects.filter(username="newbie").exists()
    assert Invitation.objects.get().accepted_at is None


def test_invalid_or_revoked_links_are_404(world: World) -> None:
    assert Client().get("/invitations/bstinv_nope/").status_code == 404
    url = _invite(world)
    invitation = Invitation.objects.get()
    services.revoke_invitation(Principal.of_user(world.owner), invitation)
    response = Client().get(url)
    assert response.status_code == 404 and b"not valid" in response.content
