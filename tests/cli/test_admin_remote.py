"""With BASTION_URL and BASTION_TOKEN, the org-scoped commands act on a running server (a real
HTTP live server here) through the API, and report its refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.core.models import ApiToken, Project
from tests.api.conftest import Team, make_team
from tests.cli.conftest import Cli


@pytest.fixture
def server_team(live_server: Any, settings: Any) -> Team:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_team("acme")


def _remote(cli: Cli, live_server: Any, token: str) -> Cli:
    return Cli(cli.data_dir, extra_env={"BASTION_URL": live_server.url, "BASTION_TOKEN": token})


def test_project_and_token_create_through_the_api(
    cli: Cli, live_server: Any, server_team: Team
) -> None:
    remote = _remote(cli, live_server, server_team.admin_token)
    made = remote.run("project", "create", "acme/web", "--name", "Web", "--json", check=True)
    assert json.loads(made.stdout) == {
        "organization": "acme",
        "slug": "web",
        "name": "Web",
        "description": "",
        "created_at": json.loads(made.stdout)["created_at"],
    }
    assert Project.objects.filter(organization=server_team.org, slug="web").exists()

    issued = remote.run(
        "token", "create", "--org", "acme", "--role", "member", "--name", "deploy",
        "--expires-in-days", "7", "--json", check=True,
    )  # fmt: skip
    data = json.loads(issued.stdout)
    assert data["token"].startswith("bstapi_") and data["role"] == "member"
    token = ApiToken.objects.get(pk=data["id"])
    assert token.expires_at is not None and token.created_by is None  # made by a token
    # The new token works against the same server.
    again = _remote(cli, live_server, data["token"])
    assert again.run("project", "create", "acme/api").returncode == 1  # member: 403


def test_server_refusals_are_printed_and_exit_non_zero(
    cli: Cli, live_server: Any, server_team: Team
) -> None:
    viewer = _remote(cli, live_server, server_team.viewer_token)
    refused = viewer.run("project", "create", "acme/web")
    assert refused.returncode == 1
    assert "403" in refused.stderr and "admin role" in refused.stderr

    owner = _remote(cli, live_server, server_team.owner_token)
    missing = owner.run("project", "create", "elsewhere/web")
    assert missing.returncode == 1 and "404" in missing.stderr
    invalid = owner.run("project", "create", "acme/Not_A_Slug")
    assert invalid.returncode == 1 and "400" in invalid.stderr and "slug" in invalid.stderr

    revoked = _remote(cli, live_server, "bstapi_" + "x" * 43)
    unauthorized = revoked.run("audit", "export", "--org", "acme")
    assert unauthorized.returncode == 1 and "401" in unauthorized.stderr
    assert not Project.objects.exists()


def test_audit_export_from_the_server(cli: Cli, live_server: Any, server_team: Team) -> None:
    owner = _remote(cli, live_server, server_team.owner_token)
    owner.run("project", "create", "acme/web", check=True)
    rows = json.loads(owner.run("audit", "export", "--org", "acme", check=True).stdout)
    assert rows[-1]["action"] == "project.create"
    assert rows[-1]["actor"] == "token:owner token"
    csv_text = owner.run("audit", "export", "--org", "acme", "--format", "csv", check=True).stdout
    assert csv_text.splitlines()[0].startswith("seq,created_at,organization,actor,action")
    assert len(csv_text.strip().splitlines()) == len(rows) + 1
    no_org = owner.run("audit", "export")
    assert no_org.returncode == 1 and "--org" in no_org.stderr
