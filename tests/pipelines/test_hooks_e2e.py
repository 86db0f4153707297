"""Agent hooks from the agent's own ``--hooks-path``, on a real agent process and server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, cli, cli_template  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, wait_until

pytestmark = pytest.mark.slow
BUILD = "/organizations/acme/pipelines/app/builds/1"
HOOKS = {
    "environment": "export FROM_HOOK=env-hook-value\n"
    'if [ "$HOOK_REFUSE" = 1 ]; then echo "refused by the environment hook"; exit 9; fi\n',
    "pre-command": 'echo "pre-command sees $FROM_HOOK"\n',
    "post-command": 'echo "post-command after exit $BUILDKITE_COMMAND_EXIT_STATUS"\n',
    "pre-exit": 'echo "pre-exit ran"\n',
}
YAML = """
steps:
  - key: ok
    command: echo "command sees $$FROM_HOOK"
  - key: fails
    depends_on: ~
    command: echo failing; exit 3
  - key: refused
    depends_on: ~
    env: {HOOK_REFUSE: "1"}
    command: echo never-printed
"""


@pytest.fixture
def server(cli: Cli, tmp_path: Path) -> Iterator[Server]:  # noqa: F811
    running = Server(cli, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _job(build: dict[str, Any], key: str) -> dict[str, Any]:
    step = next(s for s in build["steps"] if s["key"] == key)
    job: dict[str, Any] = step["jobs"][0]
    return job


def test_hooks_run_around_each_command_and_a_failing_hook_fails_the_job(
    server: Server, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name, body in HOOKS.items():
        (hooks / name).write_text(body)
    path = tmp_path / "pipeline.yml"
    path.write_text(YAML)
    server.cli.run("pipeline", "create", "acme/app", "--file", str(path), check=True)
    server.agent("one", "--hooks-path", str(hooks))
    server.api("POST", "/organizations/acme/pipelines/app/builds", {})
    build = wait_until(
        lambda: (b := server.api("GET", BUILD))["state"] in ("passed", "failed") and b,
        timeout=90,
    )
    ok = server.log(_job(build, "ok")["job_id"])
    assert _job(build, "ok")["exit_status"] == 0
    order = ["Running agent environment hook", "pre-command sees env-hook-value",
             "command sees env-hook-value", "post-command after exit 0", "pre-exit ran"]  # fmt: skip
    positions = [ok.index(text) for text in order]
    assert positions == sorted(positions), ok
    fails = server.log(_job(build, "fails")["job_id"])
    assert _job(build, "fails")["exit_status"] == 3
    assert "post-command after exit 3" in fails and "pre-exit ran" in fails
    refused = server.log(_job(build, "refused")["job_id"])
    assert _job(build, "refused")["exit_status"] == 9
    assert "refused by the environment hook" in refused and "pre-exit ran" in refused
    assert "never-printed" not in refused and "pre-command" not in refused
    assert build["state"] == "failed"


def test_an_agent_refuses_to_start_with_a_missing_hooks_directory(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    result = cli.run(
        "agent", "start", "--server", "http://127.0.0.1:9", "--token", "x",
        "--hooks-path", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert result.returncode == 2 and "not a directory" in result.stderr
