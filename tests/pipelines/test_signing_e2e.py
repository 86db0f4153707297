"""Signed pipelines on a real agent process with ``--verification-key``: a step tampered with
in the database and an unsigned step are refused before anything runs; signed ones run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, cli, cli_template  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, wait_until

pytestmark = pytest.mark.slow
BUILD = "/organizations/acme/pipelines/app/builds/1"
YAML = """
steps:
  - key: ok
    command: echo "signed-ok on $$BUILDKITE_BRANCH"
  - key: target
    depends_on: ~
    command: echo tampered-target
"""
UNSIGNED = "- key: unsigned\n  depends_on: null\n  command: echo unsigned-step\n"


@pytest.fixture
def server(cli: Cli, tmp_path: Path) -> Iterator[Server]:  # noqa: F811
    running = Server(cli, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _job(build: dict[str, Any], key: str) -> dict[str, Any]:
    job: dict[str, Any] = next(s for s in build["steps"] if s["key"] == key)["jobs"][0]
    return job


def test_an_agent_with_the_verification_key_runs_only_untampered_signed_steps(
    server: Server, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    server.cli.run("pipeline", "keygen", str(keys), check=True)
    path = tmp_path / "pipeline.yml"
    path.write_text(YAML)
    server.cli.run(
        "pipeline", "create", "acme/app", "--file", str(path),
        "--signing-key", str(keys / "signing-key.pem"), check=True,
    )  # fmt: skip
    # Whoever controls the database changes one signed command and adds an unsigned step.
    server.cli.sql(
        "UPDATE pipelines_pipeline SET yaml = replace(yaml, 'tampered-target', 'injected') || ?",
        (UNSIGNED,),
    )
    server.agent("one", "--verification-key", str(keys / "verification-key.pem"))
    server.api("POST", "/organizations/acme/pipelines/app/builds", {})
    build = wait_until(
        lambda: (b := server.api("GET", BUILD))["state"] in ("passed", "failed") and b,
        timeout=90,
    )
    assert build["state"] == "failed"
    assert _job(build, "ok")["exit_status"] == 0
    assert "signed-ok on main" in server.log(_job(build, "ok")["job_id"])
    for key, reason in (("target", "does not match"), ("unsigned", "not signed")):
        job = _job(build, key)
        log = server.log(job["job_id"])
        assert job["exit_status"] == -1, (key, log)
        assert server.api("GET", f"/jobs/{job['job_id']}")["signal_reason"] == "signature_rejected"
        assert "signature rejected, nothing was run" in log and reason in log
        assert "injected" not in log.replace("'injected'", "") and "unsigned-step\n" not in log
