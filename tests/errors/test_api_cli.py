"""The errors API and CLI: issues with counts, search, events, resolve/ignore, DSN keys; every
read scoped to the caller's organizations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from bastion.cli import main
from bastion.core import services as core_services
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.errors.models import DsnKey, Issue
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import envelope, event_payload
from tests.errors.test_ingest_protocol import auth_header, post, url
from tests.factories import make_member


def _token(setup: Setup, role: str = Role.OWNER) -> str:
    issued = core_services.create_api_token(
        Principal.of_user(setup.owner), setup.org, name=f"t-{role}", role=role
    )
    return issued.plaintext


def _api(client: Client, method: str, path: str, token: str, **data: Any) -> Any:
    full = f"/api/v1/organizations/{path}"
    headers = {"Authorization": f"Bearer {token}"}
    if method == "get":
        return client.get(full, data, headers=headers)
    return client.post(full, json.dumps(data), content_type="application/json", headers=headers)


def _send(client: Client, setup: Setup, **fields: Any) -> str:
    event_id, body = envelope(event_payload(**fields))
    assert post(client, url(setup), body, **auth_header(setup)).status_code == 200
    return event_id


@pytest.fixture
def populated(client: Client, setup: Setup) -> Setup:
    _send(client, setup, user={"id": "1"}, release="r1")
    _send(client, setup, user={"id": "2"}, release="r2")
    _send(client, setup, message="disk full", exception=None)
    return setup


def test_list_issues_with_counts_search_and_status(client: Client, populated: Setup) -> None:
    token = _token(populated)
    base = f"{populated.org.slug}/projects/{populated.project.slug}/issues"
    listing = _api(client, "get", base, token).json()
    assert listing["count"] == 2
    top = next(i for i in listing["items"] if i["title"].startswith("ValueError"))
    assert top["event_count"] == 2 and top["users_affected"] == 2
    assert sorted(top["releases"]) == ["r1", "r2"]
    found = _api(client, "get", base, token, query="disk").json()
    assert [i["title"] for i in found["items"]] == ["disk full"]
    resolved = _api(client, "post", f"{base}/{top['id']}/resolve", token)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert _api(client, "get", base, token, status="resolved").json()["count"] == 1
    ignored = _api(client, "post", f"{base}/{top['id']}/ignore", token).json()
    assert ignored["status"] == "ignored"
    assert AuditEvent.objects.filter(action="errors.issue.resolved").count() == 1
    assert AuditEvent.objects.filter(action="errors.issue.ignored").count() == 1
    events = _api(client, "get", f"{base}/{top['id']}/events", token).json()
    assert events["count"] == 2
    assert {e["release"] for e in events["items"]} == {"r1", "r2"}
    assert _api(client, "get", base, token, status="bogus").status_code == 400
    assert _api(client, "get", base, token, limit=100000).status_code == 400


def test_other_organizations_issues_are_404_and_viewers_cannot_resolve(
    client: Client, populated: Setup
) -> None:
    other = make_setup()
    other_token = _token(other)
    issue = Issue.objects.filter(project=populated.project).first()
    assert issue is not None
    path = f"{populated.org.slug}/projects/{populated.project.slug}/issues"
    assert _api(client, "get", path, other_token).status_code == 404
    assert _api(client, "get", f"{path}/{issue.pk}", other_token).status_code == 404
    assert _api(client, "post", f"{path}/{issue.pk}/resolve", other_token).status_code == 404
    # Their own project path with our issue id: still not found.
    theirs = f"{other.org.slug}/projects/{other.project.slug}/issues/{issue.pk}"
    assert _api(client, "get", theirs, other_token).status_code == 404
    viewer_token = _token(populated, Role.VIEWER)
    assert _api(client, "get", f"{path}/{issue.pk}", viewer_token).status_code == 200
    assert _api(client, "post", f"{path}/{issue.pk}/resolve", viewer_token).status_code == 403
    make_member(populated.org, Role.VIEWER)
    issue.refresh_from_db()
    assert issue.status == "unresolved"


def test_dsn_keys_api(client: Client, setup: Setup) -> None:
    token = _token(setup)
    base = f"{setup.org.slug}/projects/{setup.project.slug}/keys"
    keys = _api(client, "get", base, token).json()
    assert len(keys) == 1 and keys[0]["dsn"].endswith(f"/{setup.project.pk}")
    assert setup.public_key in keys[0]["dsn"]
    created = _api(client, "post", base, token, label="browser", rate_limit_per_minute=10)
    assert created.status_code == 201
    key_id = created.json()["id"]
    patched = client.patch(
        f"/api/v1/organizations/{base}/{key_id}",
        json.dumps({"enabled": False}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert not DsnKey.objects.get(pk=key_id).enabled
    member_token = _token(setup, Role.MEMBER)
    assert _api(client, "post", base, member_token, label="x").status_code == 403


def test_cli_prints_dsn_and_lists_issues(
    client: Client, populated: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{populated.org.slug}/{populated.project.slug}"
    assert main(["project", "dsn", target]) == 0
    dsn = capsys.readouterr().out.strip()
    assert dsn.startswith("http://") and dsn.endswith(f"/{populated.project.pk}")
    assert populated.public_key in dsn
    assert main(["errors", "issues", target, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["title"]: r["event_count"] for r in rows} == {
        "ValueError: bad value 12": 2,
        "disk full": 1,
    }
    assert main(["errors", "issues", target]) == 0
    assert "disk full" in capsys.readouterr().out
    assert main(["errors", "issues", "nope/nope"]) == 1
    assert main(["project", "dsn", "bad-target"]) == 1


def test_cli_dsn_creates_a_key_when_the_project_has_none(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    DsnKey.objects.all().delete()
    assert main(["project", "dsn", f"{setup.org.slug}/{setup.project.slug}"]) == 0
    assert DsnKey.objects.filter(project=setup.project).count() == 1
    assert AuditEvent.objects.filter(action="errors.dsn_key.create").exists()
    assert capsys.readouterr().out.strip().endswith(f"/{setup.project.pk}")
