"""Signed pipelines on a real agent process with ``--verification-key``: a step tampered with
in the database, an unsigned step, a checkout pointed at another repository and a step sent to
agents it was not signed for are refused before anything runs; signed ones run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, cli, cli_template  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, wait_until
from tests.pipelines.test_checkout_e2e import _git

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


TARGETED = """
steps:
  - key: ok
    command: echo "signed checkout of $$(cat VERSION)"
    agents: {queue: deploy}
  - key: retargeted
    depends_on: ~
    command: echo retargeted-ran
    agents: {queue: builds}
  - key: widened
    depends_on: ~
    command: echo widened-ran
    agents: {queue: release}
"""


def _repository(path: Path, version: str) -> str:
    path.mkdir()
    _git(path, "init", "--quiet", "--initial-branch", "main")
    (path / "VERSION").write_text(f"{version}\n")
    _git(path, "add", ".")
    _git(path, "commit", "--quiet", "-m", version)
    return str(path)


def _finished(server: Server, slug: str) -> dict[str, Any]:
    path = f"/organizations/acme/pipelines/{slug}/builds/1"
    build: dict[str, Any] = wait_until(
        lambda: (b := server.api("GET", path))["state"] in ("passed", "failed") and b,
        timeout=90,
    )
    return build


def test_the_signature_binds_the_checkout_repository_and_the_agents_targeting(
    server: Server, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    server.cli.run("pipeline", "keygen", str(keys), check=True)
    good = _repository(tmp_path / "good", "good")
    evil = _repository(tmp_path / "evil", "evil")
    for slug, text in (("app", TARGETED), ("moved", TARGETED.split("  - key: retargeted")[0])):
        path = tmp_path / f"{slug}.yml"
        path.write_text(text)
        server.cli.run(
            "pipeline", "create", f"acme/{slug}", "--file", str(path), "--repository", good,
            "--signing-key", str(keys / "signing-key.pem"), check=True,
        )  # fmt: skip
    # Whoever controls the database points one pipeline's checkout at another repository, and
    # sends two steps of the other to the privileged deploy agent: one by its routing only, one
    # with the signed rules rewritten too.
    server.cli.sql("UPDATE pipelines_pipeline SET repository = ? WHERE slug = 'moved'", (evil,))
    server.cli.sql(
        "UPDATE pipelines_pipeline SET yaml = replace(replace(yaml, ?, ?), 'queue: release', "
        "'queue: deploy') WHERE slug = 'app'",
        ("    queue: builds\n  signature:", "    queue: deploy\n  signature:"),
    )
    server.agent("deploy", "--verification-key", str(keys / "verification-key.pem"), queue="deploy")
    for slug in ("app", "moved"):
        server.api("POST", f"/organizations/acme/pipelines/{slug}/builds", {})
    app = _finished(server, "app")
    assert _job(app, "ok")["exit_status"] == 0
    assert "signed checkout of good" in server.log(_job(app, "ok")["job_id"])
    refusals = [
        (app, "retargeted", "not one the signed step targets (agents: queue=builds)"),
        (app, "widened", "does not match"),
    ]
    moved = _finished(server, "moved")
    refusals.append((moved, "ok", f"repository {evil!r} is not the signed one"))
    assert app["state"] == moved["state"] == "failed"
    for build, key, reason in refusals:
        job = _job(build, key)
        log = server.log(job["job_id"])
        assert job["exit_status"] == -1, (key, log)
        assert server.api("GET", f"/jobs/{job['job_id']}")["signal_reason"] == "signature_rejected"
        assert "signature rejected, nothing was run" in log and reason in log, (key, log)
        assert "checked out" not in log and "-ran\n" not in log and "evil\n" not in log


MATRIX = """
steps:
  - key: m
    command: echo "ran {{matrix}}"
    matrix: [a, b]
"""
SHELL = 'b"; echo pwned-$((6*7)); echo "'


def test_a_job_whose_matrix_combination_was_tampered_is_refused(
    server: Server, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    server.cli.run("pipeline", "keygen", str(keys), check=True)
    path = tmp_path / "pipeline.yml"
    path.write_text(MATRIX)
    server.cli.run(
        "pipeline", "create", "acme/app", "--file", str(path),
        "--signing-key", str(keys / "signing-key.pem"), check=True,
    )  # fmt: skip
    server.api("POST", "/organizations/acme/pipelines/app/builds", {})
    jobs = wait_until(lambda: _made(server))
    tampered = next(j for j in jobs if j["matrix"] == {"": "b"})["job_id"]
    # Whoever controls the database gives job b a combination carrying shell code, and the
    # command substituted with it, before any agent takes it.
    ((raw,),) = server.cli.sql("SELECT payload FROM jobs_job WHERE id = ?", (tampered,))
    payload = json.loads(raw) if isinstance(raw, str) else raw
    payload |= {"matrix": {"": SHELL}, "command": f'set -e\necho "ran {SHELL}"'}
    server.cli.sql("UPDATE jobs_job SET payload = ? WHERE id = ?", (json.dumps(payload), tampered))
    server.agent("one", "--verification-key", str(keys / "verification-key.pem"))
    build = wait_until(
        lambda: (b := server.api("GET", BUILD))["state"] in ("passed", "failed") and b,
        timeout=90,
    )
    assert build["state"] == "failed"
    (step,) = build["steps"]
    by_combo = {j["matrix"][""]: j for j in step["jobs"]}
    assert by_combo["a"]["exit_status"] == 0
    assert "ran a\n" in server.log(by_combo["a"]["job_id"])
    log = server.log(tampered)
    assert by_combo["b"]["exit_status"] == -1, log
    assert server.api("GET", f"/jobs/{tampered}")["signal_reason"] == "signature_rejected"
    assert "signature rejected, nothing was run" in log
    assert "is not one the signed matrix makes" in log
    assert "pwned-42" not in log and "ran b" not in log


def _made(server: Server) -> list[dict[str, Any]] | None:
    """The build's two matrix jobs, once both have a job row."""
    jobs = [job for step in server.api("GET", BUILD)["steps"] for job in step["jobs"]]
    return jobs if len(jobs) == 2 and all(job["job_id"] for job in jobs) else None
