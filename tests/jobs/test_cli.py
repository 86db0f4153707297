"""``bastion cluster create`` and ``bastion agent-token create`` on the test database."""

from __future__ import annotations

import json

import pytest

from bastion.cli import main
from bastion.core.models import AuditEvent
from bastion.core.tokens import hash_token
from bastion.jobs import dispatch
from bastion.jobs.models import AgentToken, Cluster
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


def test_cluster_and_agent_token_create(capsys: pytest.CaptureFixture[str]) -> None:
    org = make_org(make_user(), slug="acme")
    assert main(["cluster", "create", "acme", "deploy", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "deploy" and Cluster.objects.filter(organization=org).count() == 1
    assert AuditEvent.objects.filter(action="cluster.create", actor_label="cli").exists()
    assert main(["cluster", "create", "acme", "deploy"]) == 1
    assert "already exists" in capsys.readouterr().err

    args = ["agent-token", "create", "--org", "acme", "--cluster", "deploy", "--json"]
    assert main([*args, "--description", "ci", "--expires-in-days", "3"]) == 0
    issued = json.loads(capsys.readouterr().out)
    token = AgentToken.objects.get(pk=issued["id"])
    assert token.token_hash == hash_token(issued["token"]) and token.expires_at is not None
    assert (
        dispatch.register_agent(issued["token"], name="a", tags={}).agent.cluster.name == "deploy"
    )

    assert main(["agent-token", "create", "--org", "acme", "--cluster", "deploy"]) == 0
    plain = capsys.readouterr().out
    assert re_token(plain)
    assert main(["agent-token", "create", "--org", "nope", "--cluster", "deploy"]) == 1
    assert main(["agent-token", "create", "--org", "acme", "--cluster", "nope"]) == 1
    assert main([*args, "--expires-in-days", "0"]) == 1
    assert main(["cluster", "create", "nope", "x"]) == 1


def re_token(text: str) -> bool:
    return any(line.startswith("bstagt_") for line in text.splitlines())
