"""An organization with one user of each role and API tokens, and a small JSON client for the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.models import Organization, Role, User
from tests.factories import make_member, make_org, make_user

API = "/api/v1"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes


class ApiClient:
    """Django's test client (the whole middleware stack) speaking JSON, with a bearer token or a
    logged-in session."""

    def __init__(self, token: str | None = None, user: User | None = None, csrf: bool = False):
        self.client = Client(enforce_csrf_checks=csrf)
        self.token = token
        if user is not None:
            self.client.force_login(user)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        **extra: Any,
    ) -> Reply:
        if self.token is not None:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        url = path if path.startswith("/api/") else API + path
        response = self.client.generic(method, url, data, content_type=content_type, **extra)
        content = (
            b"".join(response.streaming_content)  # type: ignore[attr-defined]
            if response.streaming
            else response.content
        )
        parsed: Any = None
        if response.get("Content-Type", "").startswith("application/json") and content:
            parsed = json.loads(content)
        return Reply(response.status_code, parsed, dict(response.items()), content)

    def get(self, path: str, **extra: Any) -> Reply:
        return self.call("GET", path, **extra)

    def post(self, path: str, body: Any = None, **extra: Any) -> Reply:
        return self.call("POST", path, body, **extra)

    def patch(self, path: str, body: Any = None, **extra: Any) -> Reply:
        return self.call("PATCH", path, body, **extra)

    def delete(self, path: str, **extra: Any) -> Reply:
        return self.call("DELETE", path, **extra)


@dataclass
class Team:
    org: Organization
    owner: User
    admin: User
    member: User
    viewer: User
    owner_token: str
    admin_token: str
    viewer_token: str

    def as_owner(self) -> ApiClient:
        return ApiClient(token=self.owner_token)

    def as_admin(self) -> ApiClient:
        return ApiClient(token=self.admin_token)

    def as_viewer(self) -> ApiClient:
        return ApiClient(token=self.viewer_token)


def make_team(slug: str) -> Team:
    owner = make_user(f"{slug}-owner")
    org = make_org(owner, slug=slug)
    principal = Principal.of_user(owner)
    tokens = {
        role: services.create_api_token(principal, org, name=f"{role} token", role=role).plaintext
        for role in (Role.OWNER, Role.ADMIN, Role.VIEWER)
    }
    return Team(
        org=org,
        owner=owner,
        admin=make_member(org, Role.ADMIN, f"{slug}-admin"),
        member=make_member(org, Role.MEMBER, f"{slug}-member"),
        viewer=make_member(org, Role.VIEWER, f"{slug}-viewer"),
        owner_token=tokens[Role.OWNER],
        admin_token=tokens[Role.ADMIN],
        viewer_token=tokens[Role.VIEWER],
    )


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings: Any) -> None:
    # Argon2 is the production hasher (tested elsewhere); these tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team(db: None) -> Team:
    return make_team("acme")
