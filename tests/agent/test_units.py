"""Agent pieces that need no server: tags, executors, secret names, retry delays."""

from __future__ import annotations

import pytest

from bastion.agent.client import Retry
from bastion.agent.executors import EXECUTORS, executor_for
from bastion.agent.stream import secret_values
from bastion.agent.worker import job_base_env, parse_tags


def test_parse_tags() -> None:
    assert parse_tags("queue=deploy, os=linux,,") == {"queue": "deploy", "os": "linux"}
    for bad in ("queue", "=x"):
        with pytest.raises(ValueError):
            parse_tags(bad)


def test_executor_registry_knows_command_and_not_yet_built_kinds() -> None:
    assert executor_for("command") is EXECUTORS["command"]
    assert executor_for("teleport") is None


def test_secret_values_by_declaration_and_by_name() -> None:
    env = {"DB_PASSWORD": "pw-123456", "PLAIN": "visible", "CUSTOM": "declared-1", "X_TOKEN": ""}
    assert sorted(secret_values(env, ["CUSTOM"])) == ["declared-1", "pw-123456"]


def test_retry_delay_is_bounded_and_honours_retry_after() -> None:
    retry = Retry(attempts=3, base_s=0.5, max_s=2.0)
    assert all(0.25 <= retry.delay(0) <= 0.5 for _ in range(20))
    assert retry.delay(10) <= 2.0
    assert retry.delay(0, "1") == 1.0 and retry.delay(0, "999") == 2.0


def test_jobs_do_not_inherit_bastion_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_DATABASE_URL", "postgres://secret@db/x")
    monkeypatch.setenv("BASTION_AGENT_TOKEN", "bstagt_x")
    env = job_base_env()
    assert not any(name.startswith("BASTION_") for name in env)
    assert "PATH" in env
