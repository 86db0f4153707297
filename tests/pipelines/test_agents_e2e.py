"""Builds end to end: a real server process, real ``bastion agent`` processes running the jobs,
and the real ``bastion build create --wait`` following the build through the HTTP API."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, cli, cli_template  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, wait_until

pytestmark = pytest.mark.slow

FAN = """
env:
  APP: demo
steps:
  - key: build
    command: echo "building $$APP at $$BUILDKITE_COMMIT"
  - key: shards
    depends_on: build
    parallelism: 3
    command: echo "shard $$BUILDKITE_PARALLEL_JOB of $$BUILDKITE_PARALLEL_JOB_COUNT"
  - key: lint
    depends_on: build
    command: echo linting; exit 3
    soft_fail: [{exit_status: 3}]
  - key: flaky
    depends_on: build
    command: echo "attempt $$BUILDKITE_RETRY_COUNT"; test "$$BUILDKITE_RETRY_COUNT" = 1 || exit 42
    retry:
      automatic: [{exit_status: 42, limit: 1}]
  - key: gate
    block: Release?
    depends_on: [shards, lint, flaky]
    fields:
      - {text: Version, key: version, format: "v[0-9]+"}
  - key: release
    depends_on: gate
    command: echo "release of $$BUILDKITE_BRANCH"
"""
BUILD = "/organizations/acme/pipelines/app/builds/1"


@pytest.fixture
def server(cli: Cli, tmp_path: Path) -> Iterator[Server]:  # noqa: F811
    running = Server(cli, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _pipeline(server: Server, yaml: str, tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml)
    server.cli.run("pipeline", "create", "acme/app", "--file", str(path), check=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _step(build: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in build["steps"] if s["key"] == key)


def test_fan_out_fan_in_soft_fail_retry_and_block_on_real_agents(
    server: Server, tmp_path: Path
) -> None:
    _pipeline(server, FAN, tmp_path)
    for name in ("one", "two"):
        server.agent(name)
    follow = server.cli_remote(
        "build", "create", "acme/app", "--commit", "c0ffee", "--wait", "--json", "--timeout", "90"
    )
    try:
        # The build's state follows its steps' a moment later (the advancer writes it): wait
        # for the build, then check the step that blocks it.
        blocked = wait_until(
            lambda: (
                (b := server.api("GET", BUILD, missing_ok=True)) and b["state"] == "blocked" and b
            ),
            timeout=60,
        )
        assert _step(blocked, "gate")["state"] == "blocked"
        server.api("POST", f"{BUILD}/steps/gate/unblock", {"fields": {"version": "v2"}})
    finally:
        out, err = _finish(follow)
    assert follow.returncode == 0, (out, err)
    build = json.loads(out)
    assert build["state"] == "passed" and build["meta_data"] == {"version": "v2"}
    assert {s["key"]: s["state"] for s in build["steps"]} == {
        "build": "passed", "shards": "passed", "lint": "soft_failed",
        "flaky": "passed", "gate": "passed", "release": "passed",
    }  # fmt: skip
    assert "building demo at c0ffee" in server.log(_step(build, "build")["jobs"][0]["job_id"])
    shards = _step(build, "shards")["jobs"]
    assert sorted(server.log(j["job_id"]).strip().splitlines()[-1] for j in shards) == [
        "shard 0 of 3", "shard 1 of 3", "shard 2 of 3",
    ]  # fmt: skip
    flaky = _step(build, "flaky")["jobs"]
    assert [(j["attempt"], j["superseded"], j["exit_status"]) for j in flaky] == [
        (0, True, 42), (1, False, 0),
    ]  # fmt: skip
    assert _step(build, "lint")["jobs"][0]["exit_status"] == 3
    assert "release of main" in server.log(_step(build, "release")["jobs"][0]["job_id"])
    # Fan-in: the gate opened only after every shard had finished.
    assert _step(build, "gate")["started_at"] >= max(j["finished_at"] for j in shards)
    assert {j["agent"] for s in build["steps"] for j in s["jobs"]} == {"one", "two"}


def test_cancel_stops_the_running_job_and_the_cli_exits_non_zero(
    server: Server, tmp_path: Path
) -> None:
    _pipeline(server, "steps:\n  - command: echo started; sleep 300\n    key: long\n"
              "  - command: echo never\n", tmp_path)  # fmt: skip
    server.agent("one", "--cancel-grace-period", "1")
    follow = server.cli_remote("build", "create", "acme/app", "--wait", "--timeout", "60")
    try:
        job_id = wait_until(
            lambda: (
                (b := server.api("GET", BUILD, missing_ok=True))
                and _step(b, "long")["jobs"][0]["job_id"]
            ),
            timeout=30,
        )
        wait_until(lambda: "started" in server.log(job_id), timeout=20)
        canceled = server.api("POST", f"{BUILD}/cancel")
        assert canceled["state"] == "canceling"
    finally:
        out, err = _finish(follow)
    assert follow.returncode == 1, (out, err)
    assert "Build #1 of acme/app: canceled" in out
    build = server.api("GET", BUILD)
    assert {s["key"]: s["state"] for s in build["steps"]} == {
        "long": "canceled",
        "step-2": "canceled",
    }
    assert _step(build, "long")["jobs"][0]["state"] == "canceled"
    assert server.api("GET", f"/jobs/{job_id}")["state"] == "canceled"
