"""The core API through its public interface: organizations, projects, members, invitations,
tokens and the audit log, with the audit rows each write leaves."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from django.core import mail
from django.utils import timezone

from bastion.core import services
from bastion.core.models import ApiToken, AuditEvent, Invitation, Membership, Organization, Project
from bastion.core.tokens import hash_token
from tests.api.conftest import ApiClient, Team


def _last_action() -> str:
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None
    return event.action


# --- organizations ---------------------------------------------------------------------------


def test_token_sees_only_its_organization(team: Team) -> None:
    other_owner = team.member  # a member of acme who also owns another organization
    ApiClient(user=other_owner).post("/organizations", {"slug": "side", "name": "Side"})
    reply = team.as_owner().get("/organizations")
    assert reply.status == 200
    assert reply.body == [
        {"slug": "acme", "name": "Acme", "created_at": reply.body[0]["created_at"], "role": "owner"}
    ]
    mine = ApiClient(user=other_owner).get("/organizations").body
    assert {(o["slug"], o["role"]) for o in mine} == {("acme", "member"), ("side", "owner")}


def test_user_creates_organization_and_becomes_owner(team: Team) -> None:
    reply = ApiClient(user=team.viewer).post("/organizations", {"slug": "new-org", "name": "New"})
    assert reply.status == 201, reply.body
    assert reply.body["role"] == "owner"
    org = Organization.objects.get(slug="new-org")
    assert Membership.objects.get(organization=org).user == team.viewer
    assert AuditEvent.objects.filter(organization=org, action="organization.create").exists()


def test_api_token_cannot_create_organizations(team: Team) -> None:
    before = Organization.objects.count()
    reply = team.as_owner().post("/organizations", {"slug": "by-token"})
    assert reply.status == 403
    assert "token" in reply.body["detail"]
    assert Organization.objects.count() == before


def test_duplicate_or_invalid_organization_slug_is_400(team: Team) -> None:
    client = ApiClient(user=team.owner)
    assert client.post("/organizations", {"slug": "acme"}).status == 400
    reply = client.post("/organizations", {"slug": "Not A Slug"})
    assert reply.status == 400 and reply.body["errors"]


def test_get_organization_reports_role(team: Team) -> None:
    reply = team.as_viewer().get("/organizations/acme")
    assert reply.status == 200 and reply.body["role"] == "viewer"


def test_rename_organization_is_audited_and_refused_to_viewers(team: Team) -> None:
    reply = team.as_admin().patch("/organizations/acme", {"name": "Acme Corp"})
    assert reply.status == 200 and reply.body["name"] == "Acme Corp"
    assert reply.body["slug"] == "acme"
    event = AuditEvent.objects.filter(action="organization.rename").get()
    assert event.changes == {"name": {"before": "Acme", "after": "Acme Corp"}}
    assert team.as_viewer().patch("/organizations/acme", {"name": "Viewer Inc"}).status == 403
    assert team.as_admin().patch("/organizations/acme", {"name": ""}).status == 400
    assert Organization.objects.get(slug="acme").name == "Acme Corp"


# --- projects --------------------------------------------------------------------------------


def test_project_create_get_update_list(team: Team) -> None:
    client = team.as_admin()
    created = client.post("/organizations/acme/projects", {"slug": "web", "name": "Web"})
    assert created.status == 201, created.body
    assert created.body["organization"] == "acme"
    assert _last_action() == "project.create"

    patched = client.patch("/organizations/acme/projects/web", {"description": "The shop"})
    assert patched.status == 200
    assert patched.body["description"] == "The shop" and patched.body["name"] == "Web"
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None and event.action == "project.update"
    assert event.changes == {"description": {"before": "", "after": "The shop"}}

    assert (
        team.as_viewer().get("/organizations/acme/projects/web").body["description"] == "The shop"
    )
    assert [p["slug"] for p in team.as_viewer().get("/organizations/acme/projects").body] == ["web"]


def test_viewer_cannot_create_project(team: Team) -> None:
    reply = team.as_viewer().post("/organizations/acme/projects", {"slug": "nope"})
    assert reply.status == 403
    assert not Project.objects.filter(slug="nope").exists()


def test_duplicate_project_is_400(team: Team) -> None:
    client = team.as_owner()
    assert client.post("/organizations/acme/projects", {"slug": "web"}).status == 201
    reply = client.post("/organizations/acme/projects", {"slug": "web"})
    assert reply.status == 400 and "slug" in reply.body["errors"]
    assert Project.objects.filter(slug="web").count() == 1


# --- members ---------------------------------------------------------------------------------


def test_members_list_and_role_change_and_removal(team: Team) -> None:
    client = team.as_owner()
    members = client.get("/organizations/acme/members").body
    assert [(m["username"], m["role"]) for m in members] == [
        ("acme-admin", "admin"),
        ("acme-member", "member"),
        ("acme-owner", "owner"),
        ("acme-viewer", "viewer"),
    ]
    reply = client.patch("/organizations/acme/members/acme-viewer", {"role": "member"})
    assert reply.status == 200 and reply.body["role"] == "member"
    assert _last_action() == "member.role_change"

    assert client.delete("/organizations/acme/members/acme-viewer").status == 204
    assert not Membership.objects.filter(user=team.viewer).exists()
    assert _last_action() == "member.remove"


def test_admin_cannot_touch_owner_and_last_owner_stays(team: Team) -> None:
    admin = team.as_admin()
    assert admin.patch("/organizations/acme/members/acme-owner", {"role": "viewer"}).status == 403
    assert admin.delete("/organizations/acme/members/acme-owner").status == 403
    owner = ApiClient(user=team.owner)
    reply = owner.patch("/organizations/acme/members/acme-owner", {"role": "admin"})
    assert reply.status == 400 and "owner" in json.dumps(reply.body["errors"])
    assert owner.delete("/organizations/acme/members/acme-owner").status == 400
    assert Membership.objects.get(user=team.owner).role == "owner"


def test_unknown_role_is_400(team: Team) -> None:
    reply = team.as_owner().patch("/organizations/acme/members/acme-viewer", {"role": "god"})
    assert reply.status == 400
    assert Membership.objects.get(user=team.viewer).role == "viewer"


# --- invitations -----------------------------------------------------------------------------


def test_invitation_lifecycle(team: Team, django_capture_on_commit_callbacks: Any) -> None:
    client = team.as_admin()
    with django_capture_on_commit_callbacks(execute=True):
        reply = client.post(
            "/organizations/acme/invitations", {"email": "new@x.test", "role": "member"}
        )
    assert reply.status == 201, reply.body
    url = reply.body["accept_url"]
    token = url.rstrip("/").rsplit("/", 1)[-1]
    invitation = Invitation.objects.get(pk=reply.body["id"])
    assert invitation.token_hash == hash_token(token)  # only the hash is stored
    assert len(mail.outbox) == 1 and url in mail.outbox[0].body

    listed = client.get("/organizations/acme/invitations").body
    assert [i["email"] for i in listed] == ["new@x.test"]
    assert "accept_url" not in listed[0]

    assert client.delete(f"/organizations/acme/invitations/{invitation.pk}").status == 204
    assert client.get("/organizations/acme/invitations").body == []
    assert services.find_pending_invitation(token) is None
    assert _last_action() == "invitation.revoke"


def test_admin_cannot_invite_an_owner(team: Team) -> None:
    reply = team.as_admin().post(
        "/organizations/acme/invitations", {"email": "o@x.test", "role": "owner"}
    )
    assert reply.status == 403
    assert not Invitation.objects.exists()


# --- tokens ----------------------------------------------------------------------------------


def test_token_created_once_listed_without_secret_then_revoked(team: Team) -> None:
    client = team.as_owner()
    expires = (timezone.now() + timedelta(days=3)).isoformat()
    created = client.post(
        "/organizations/acme/tokens", {"name": "ci", "role": "member", "expires_at": expires}
    )
    assert created.status == 201, created.body
    secret = created.body["token"]
    assert secret.startswith("bstapi_") and created.body["active"] is True
    assert ApiToken.objects.get(pk=created.body["id"]).token_hash == hash_token(secret)

    listing = client.get("/organizations/acme/tokens")
    assert secret not in listing.raw.decode()
    assert all("token" not in t for t in listing.body)
    assert ApiClient(token=secret).get("/organizations/acme/projects").status == 200

    assert client.delete(f"/organizations/acme/tokens/{created.body['id']}").status == 204
    assert ApiClient(token=secret).get("/organizations/acme/projects").status == 401
    assert _last_action() == "api_token.revoke"


def test_member_cannot_list_tokens(team: Team) -> None:
    assert ApiClient(user=team.member).get("/organizations/acme/tokens").status == 403


def test_token_expiry_in_the_past_is_400(team: Team) -> None:
    past = (timezone.now() - timedelta(days=1)).isoformat()
    before = ApiToken.objects.count()
    reply = team.as_owner().post("/organizations/acme/tokens", {"name": "old", "expires_at": past})
    assert reply.status == 400 and "expires_at" in reply.body["errors"]
    assert ApiToken.objects.count() == before


# --- audit -----------------------------------------------------------------------------------


def test_audit_filters_and_pagination(team: Team) -> None:
    client = team.as_owner()
    for n in range(5):
        client.post("/organizations/acme/projects", {"slug": f"p{n}"})
    page = client.get("/organizations/acme/audit?action=project.create&limit=2").body
    assert [e["object_repr"] for e in page["items"]] == ["acme/p4", "acme/p3"]
    assert all(e["actor"] == "token:owner token" for e in page["items"])
    seen = [e["seq"] for e in page["items"]]
    while page["next_before"] is not None:
        page = client.get(
            f"/organizations/acme/audit?action=project.create&limit=2&before={page['next_before']}"
        ).body
        seen += [e["seq"] for e in page["items"]]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)

    by_actor = client.get("/organizations/acme/audit?actor=user:acme-owner").body["items"]
    # The owner issued the three tokens and added the three members (tests.factories).
    assert sorted(e["action"] for e in by_actor) == ["api_token.create"] * 3 + ["member.add"] * 3
    by_type = client.get("/organizations/acme/audit?object_type=core.apitoken").body["items"]
    assert {e["action"] for e in by_type} == {"api_token.create"}
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert (
        client.get("/organizations/acme/audit", QUERY_STRING=f"since={future}").body["items"] == []
    )
    everything = client.get("/organizations/acme/audit", QUERY_STRING=f"until={future}").body
    assert len(everything["items"]) == AuditEvent.objects.filter(organization=team.org).count()


def test_audit_is_for_admins(team: Team) -> None:
    assert ApiClient(user=team.member).get("/organizations/acme/audit").status == 403
    assert team.as_viewer().get("/organizations/acme/audit/export").status == 403
    assert team.as_viewer().get("/organizations/acme/audit/verify").status == 403


def test_audit_export_csv_and_json(team: Team) -> None:
    client = team.as_admin()
    client.post("/organizations/acme/projects", {"slug": "=cmd", "name": "x"})  # refused: bad slug
    client.post("/organizations/acme/projects", {"slug": "web", "name": "=HYPERLINK(1)"})
    as_json = client.get("/organizations/acme/audit/export?format=json")
    assert as_json.status == 200
    assert as_json.headers["Content-Disposition"] == 'attachment; filename="audit-acme.json"'
    rows = json.loads(as_json.raw)
    assert len(rows) == AuditEvent.objects.filter(organization=team.org).count()
    assert rows[-1]["action"] == "project.create" and rows[-1]["organization"] == "acme"
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)

    as_csv = client.get("/organizations/acme/audit/export?format=csv&action=project.create")
    assert as_csv.status == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.raw.decode())))
    assert len(table) == 1
    assert "'=HYPERLINK" in table[0]["changes"] or table[0]["changes"].startswith("{")
    assert table[0]["hash"] == rows[-1]["hash"]


def test_audit_verify_reports_intact_chain(team: Team) -> None:
    reply = team.as_admin().get("/organizations/acme/audit/verify")
    assert reply.status == 200
    assert reply.body["ok"] is True and reply.body["checked"] == AuditEvent.objects.count()


# --- the OpenAPI document --------------------------------------------------------------------


def test_openapi_document_declares_errors_for_every_operation(team: Team) -> None:
    doc = ApiClient().get("/openapi.json").body
    operations = [
        (path, method, op)
        for path, item in doc["paths"].items()
        if path.startswith("/api/v1/organizations")
        for method, op in item.items()
    ]
    assert len(operations) >= 19
    for path, method, op in operations:
        codes = set(op["responses"])
        assert {"401", "403", "404"} <= codes, (method, path, codes)
        if method in {"post", "patch", "delete"}:
            assert {"400"} <= codes, (method, path, codes)
