"""Every page renders, the front door routes people, and errors get pages in the layout."""

from __future__ import annotations

import pytest
from django.test import Client

from bastion.core.models import Membership, Organization, Role
from tests.factories import make_member, make_user
from tests.web.conftest import World, login_client

pytestmark = pytest.mark.django_db

NAV_PAGES = ["", "scanning/", "browser/", "pipelines/", "errors/", "agents/", "audit/", "settings/"]


def test_every_navigation_page_renders_with_the_layout(world: World, owner_client: Client) -> None:
    for suffix in [*NAV_PAGES, "settings/members/", "settings/tokens/", "settings/clusters/"]:
        response = owner_client.get(f"/o/{world.org.slug}/{suffix}")
        assert response.status_code == 200, suffix
        html = response.content.decode()
        assert 'class="sidebar"' in html and world.org.name in html
        assert 'aria-current="page"' in html or suffix.startswith("settings/")


def test_module_pages_explain_and_show_an_empty_state(world: World, owner_client: Client) -> None:
    expected = {
        "scanning": "No scan targets yet",
        "browser": "No browser tests yet",
        "pipelines": "No pipelines yet",
        "errors": "No errors received yet",
    }
    for module, empty in expected.items():
        html = owner_client.get(f"/o/{world.org.slug}/{module}/").content.decode()
        assert empty in html and "Create a project" in html


def test_dashboard_empty_states_tell_what_to_do(world: World, owner_client: Client) -> None:
    html = owner_client.get(f"/o/{world.org.slug}/").content.decode()
    assert "No jobs yet" in html and "No agent is online" in html and "Create a project" in html


def test_root_goes_to_first_org_or_to_create_one() -> None:
    lonely = login_client(make_user())
    response = lonely.get("/")
    assert response["Location"] == "/orgs/new/"
    page = lonely.get("/orgs/new/")
    assert b"Create your first organization" in page.content


def test_create_organization(world: World) -> None:
    user = make_user()
    client = login_client(user)
    response = client.post("/orgs/new/", {"name": "Rocket Co", "slug": "rocket"})
    assert response.status_code == 302 and response["Location"] == "/o/rocket/"
    org = Organization.objects.get(slug="rocket")
    assert Membership.objects.get(organization=org, user=user).role == Role.OWNER
    bad = client.post("/orgs/new/", {"name": "Dup", "slug": "rocket"})
    assert bad.status_code == 400 and bad.context["form"].errors["slug"]
    bad = client.post("/orgs/new/", {"name": "Bad", "slug": "Bad Slug"})
    assert bad.status_code == 400 and bad.context["form"].errors["slug"]
    assert Organization.objects.filter(name__in=["Dup", "Bad"]).count() == 0


def test_org_switcher_lists_only_my_orgs(world: World) -> None:
    other_owner = make_user()
    from tests.factories import make_org

    make_org(other_owner, slug="secret-org")
    html = login_client(world.owner).get(f"/o/{world.org.slug}/").content.decode()
    assert f"/o/{world.org.slug}/" in html and "secret-org" not in html


def test_error_pages_use_the_layout(world: World) -> None:
    viewer = login_client(make_member(world.org, Role.VIEWER))
    forbidden = viewer.get(f"/o/{world.org.slug}/settings/tokens/")
    assert forbidden.status_code == 403
    assert (
        b"You can't do that here" in forbidden.content and b'class="sidebar"' in forbidden.content
    )
    missing = viewer.get("/o/no-such-org/")
    assert missing.status_code == 404 and b"Page not found" in missing.content
    anonymous = Client().get("/no/such/page/")
    assert anonymous.status_code == 404 and b"Go to sign in" in anonymous.content


def test_static_files_are_served_without_a_build_step(live_server: object) -> None:
    import httpx

    base = live_server.url  # type: ignore[attr-defined]
    for name in ("bastion.css", "app.js", "htmx.min.js", "favicon.svg"):
        response = httpx.get(f"{base}/static/bastion/{name}", timeout=10)
        assert response.status_code == 200 and response.content, name


def test_htmx_poll_from_an_expired_session_redirects_the_whole_page(world: World) -> None:
    response = Client().get(f"/o/{world.org.slug}/agents/live/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Redirect"] == f"/login/?next=/o/{world.org.slug}/agents/live/"


def test_400_and_500_pages_render_without_a_request_context() -> None:
    from django.test import RequestFactory
    from django.views.defaults import bad_request, server_error

    request = RequestFactory().get("/")
    error = server_error(request)
    assert error.status_code == 500 and b"Something went wrong on our side" in error.content
    bad = bad_request(request, Exception("x"))
    assert bad.status_code == 400 and b"could not be understood" in bad.content
