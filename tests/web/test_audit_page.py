"""The audit log page: org scoping, filters, pagination, exports and the chain status."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from tests.factories import make_member, make_org, make_project, make_user
from tests.web.conftest import World, login_client

pytestmark = pytest.mark.django_db


def _body(response: object) -> str:
    return b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]


def test_viewer_sees_only_their_orgs_rows(world: World) -> None:
    make_project(world.org, slug="ours")
    other = make_org(make_user(), slug="other-org")
    make_project(other, slug="theirs")
    client = login_client(make_member(world.org, Role.VIEWER))
    response = client.get(f"/o/{world.org.slug}/audit/")
    assert response.status_code == 200
    events = list(response.context["page_obj"].object_list)
    assert events and all(e.organization_id == world.org.pk for e in events)
    assert b"ours" in response.content and b"theirs" not in response.content
    # The chain status is for admins only.
    assert response.context["chain"] is None
    assert b"Hash chain" not in response.content
    for fmt in ("csv", "json"):
        body = _body(client.get(f"/o/{world.org.slug}/audit/export.{fmt}"))
        assert "ours" in body and "theirs" not in body


def test_admin_sees_the_chain_status(world: World, owner_client: Client) -> None:
    response = owner_client.get(f"/o/{world.org.slug}/audit/")
    assert response.context["chain"].ok
    assert b"Hash chain intact." in response.content


def test_filters_narrow_the_rows(world: World, owner_client: Client) -> None:
    make_project(world.org, slug="alpha")
    make_project(world.org, slug="beta")
    url = f"/o/{world.org.slug}/audit/"
    by_action = owner_client.get(url, {"action": "project."}).context["page_obj"].object_list
    assert {e.action for e in by_action} == {"project.create"} and len(by_action) == 2
    by_object = owner_client.get(url, {"object": "beta"}).context["page_obj"].object_list
    assert [e.object_repr for e in by_object] == [f"{world.org.slug}/beta"]
    by_actor = owner_client.get(url, {"actor": world.owner.username}).context["page_obj"]
    assert all(world.owner.username in e.actor_label for e in by_actor.object_list)
    today = timezone.now().date()
    tomorrow = today + timedelta(days=1)
    assert owner_client.get(url, {"since": str(today)}).context["page_obj"].paginator.count >= 2
    assert owner_client.get(url, {"since": str(tomorrow)}).context["page_obj"].paginator.count == 0
    assert (
        owner_client.get(url, {"until": str(today - timedelta(days=1))})
        .context["page_obj"]
        .paginator.count
        == 0
    )


def test_bad_filter_is_a_field_error(world: World, owner_client: Client) -> None:
    url = f"/o/{world.org.slug}/audit/"
    response = owner_client.get(url, {"since": "2026-02-30"})
    assert response.status_code == 400 and response.context["form"].errors["since"]
    response = owner_client.get(url, {"since": "2026-03-02", "until": "2026-03-01"})
    assert response.status_code == 400 and response.context["form"].errors["until"]
    assert owner_client.get(f"{url}export.csv", {"since": "nope"}).status_code == 400


def test_pagination(world: World, owner_client: Client) -> None:
    for n in range(55):
        make_project(world.org, slug=f"p{n}")
    url = f"/o/{world.org.slug}/audit/"
    first = owner_client.get(url, {"action": "project"})
    assert len(first.context["page_obj"].object_list) == 50
    second = owner_client.get(url, {"action": "project", "page": 2})
    assert len(second.context["page_obj"].object_list) == 5
    assert b"action=project&amp;page=1" in second.content


def test_exports_are_streamed_and_follow_the_filters(world: World, owner_client: Client) -> None:
    services.invite_member(
        Principal.of_user(world.owner), world.org, email="=cmd@example.test", role="member"
    )
    base = f"/o/{world.org.slug}/audit/export"
    response = owner_client.get(f"{base}.csv", {"action": "invitation."})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [r["action"] for r in rows] == ["invitation.create"]
    # Spreadsheet formulas are defused.
    assert rows[0]["object_repr"] == "'=cmd@example.test"
    response = owner_client.get(f"{base}.json")
    assert response.streaming
    data = json.loads(_body(response))
    assert len(data) == AuditEvent.objects.filter(organization=world.org).count()
    assert {"seq", "created_at", "actor", "action", "changes", "hash"} <= set(data[0])
    assert data[0]["seq"] > data[-1]["seq"]
