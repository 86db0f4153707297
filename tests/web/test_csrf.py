"""CSRF is enforced on every form, and a failure gets a page in the layout."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from bastion.core.models import Project
from tests.factories import PASSWORD, make_user
from tests.web.conftest import World

pytestmark = pytest.mark.django_db


def _token(html: bytes) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match is not None
    return match.group(1).decode()


def test_login_without_csrf_token_is_refused() -> None:
    make_user("mallory")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "mallory", "password": PASSWORD})
    assert response.status_code == 403
    assert b"This form has expired" in response.content
    assert "_auth_user_id" not in client.session
    token = _token(client.get("/login/").content)
    ok = client.post(
        "/login/", {"username": "mallory", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302


def test_state_change_without_csrf_token_changes_nothing(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    url = f"/o/{world.org.slug}/settings/projects/"
    response = client.post(url, {"name": "X", "slug": "x"})
    assert response.status_code == 403 and b'class="sidebar"' in response.content
    assert not Project.objects.exists()
    token = _token(client.get(f"/o/{world.org.slug}/settings/").content)
    assert (
        client.post(url, {"name": "X", "slug": "x", "csrfmiddlewaretoken": token}).status_code
        == 302
    )
    assert Project.objects.filter(slug="x").exists()


def test_htmx_requests_carry_the_csrf_header(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    html = client.get(f"/o/{world.org.slug}/").content.decode()
    match = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", html)
    assert match is not None
    url = f"/o/{world.org.slug}/settings/projects/"
    response = client.post(url, {"name": "Y", "slug": "y"}, headers={"X-CSRFToken": match.group(1)})
    assert response.status_code == 302
