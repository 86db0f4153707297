"""Plain helpers that build test data through the real actions (so audit rows exist too)."""

from __future__ import annotations

import itertools

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.context import Actor
from bastion.core.models import Organization, Project, Role, User

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def make_user(username: str | None = None, password: str = PASSWORD, **extra: object) -> User:
    n = next(_counter)
    username = username or f"user{n}"
    user, _ = services.create_user(
        Actor.system("test"), username=username, email=f"{username}@example.test", password=password
    )
    for key, value in extra.items():
        setattr(user, key, value)
    if extra:
        user.save()
    return user


def make_org(owner: User | None = None, slug: str | None = None) -> Organization:
    slug = slug or f"org{next(_counter)}"
    return services.create_organization(
        Actor.system("test"), name=slug.title(), slug=slug, owner=owner
    )


def make_member(org: Organization, role: str = Role.MEMBER, username: str | None = None) -> User:
    user = make_user(username)
    owner_membership = org.memberships.filter(role=Role.OWNER).select_related("user").first()
    assert owner_membership is not None, "make_org(owner=...) first"
    services.add_member(Principal.of_user(owner_membership.user), org, user, role)
    return user


def make_project(org: Organization, slug: str | None = None) -> Project:
    owner = org.memberships.filter(role=Role.OWNER).select_related("user").get().user
    return services.create_project(
        Principal.of_user(owner), org, slug=slug or f"proj{next(_counter)}", name="Project"
    )
