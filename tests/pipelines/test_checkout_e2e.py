"""Repository checkout on real agents: a local git repository (a path and a file:// URL), the
pipeline read from its ``.bastion/pipeline.yml`` by the default upload step, each job in a fresh
checkout of the build's commit with the Buildkite variables."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bastion.agent.checkout import CheckoutFailed, checkout
from bastion.pipelines.repository import repository_problem
from tests.cli.conftest import BASTION, Cli, cli, cli_template  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, server, wait_until  # noqa: F401  (fixture)

STEPS = """steps:
  - key: show
    command: |
      echo "version $$(cat VERSION) at $$(git rev-parse HEAD) on $$BUILDKITE_BRANCH"
      echo "repo $$BUILDKITE_REPO commit $$BUILDKITE_COMMIT job $$BUILDKITE_JOB_ID"
      test "$$BUILDKITE_BUILD_CHECKOUT_PATH" = "$$PWD"
      touch left-behind
  - key: fresh
    depends_on: show
    command: test ! -e left-behind && echo "fresh checkout"
"""


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.test",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits on main: (path, first sha, second sha)."""
    path = tmp_path / "app"
    path.mkdir()
    _git(path, "init", "--quiet", "--initial-branch", "main")
    (path / ".bastion").mkdir()
    (path / ".bastion" / "pipeline.yml").write_text(STEPS)
    (path / "VERSION").write_text("one\n")
    _git(path, "add", ".")
    _git(path, "commit", "--quiet", "-m", "one")
    first = _git(path, "rev-parse", "HEAD")
    (path / "VERSION").write_text("two\n")
    _git(path, "commit", "--quiet", "-am", "two")
    return path, first, _git(path, "rev-parse", "HEAD")


def test_agent_checkout_of_a_commit_and_of_a_branch(
    repo: tuple[Path, str, str], tmp_path: Path
) -> None:
    path, first, second = repo
    log: list[str] = []
    for n, (spec, expected) in enumerate([
        ({"repository": str(path), "branch": "main", "commit": first}, first),
        ({"repository": f"file://{path}", "branch": "main", "commit": "HEAD"}, second),
    ]):  # fmt: skip
        work = tmp_path / f"work{n}"
        work.mkdir()
        assert checkout(spec, work, {"PATH": "/usr/bin:/bin"}, log.append) == expected
        assert (work / "VERSION").read_text() == ("one\n" if expected == first else "two\n")
    assert any("checked out" in line for line in log)


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/pwned", "-uhack", "fd::3", "https://x y", "relative/path"]
)
def test_dangerous_repository_addresses_are_refused(url: str, tmp_path: Path) -> None:
    assert repository_problem(url) is not None
    with pytest.raises(CheckoutFailed):
        checkout({"repository": url, "branch": "main"}, tmp_path, {}, lambda _: None)
    assert list(tmp_path.iterdir()) == []


def _step(build: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in build["steps"] if s["key"] == key)


@pytest.mark.slow
def test_pipeline_from_the_repository_runs_in_fresh_checkouts_on_real_agents(
    server: Server,  # noqa: F811
    repo: tuple[Path, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, first, _ = repo
    # The upload step runs `bastion`, installed on the agent's PATH (here: the test's venv).
    monkeypatch.setenv("PATH", f"{Path(BASTION).parent}:{os.environ.get('PATH', '')}")
    created = server.cli.run(
        "pipeline", "create", "acme/app", "--repository", f"file://{path}", "--json", check=True
    )
    assert json.loads(created.stdout)["repository"] == f"file://{path}"
    server.agent("one")
    build = server.api(
        "POST", "/organizations/acme/pipelines/app/builds", {"branch": "main", "commit": first}
    )
    url = f"/organizations/acme/pipelines/app/builds/{build['number']}"
    done = wait_until(
        lambda: (b := server.api("GET", url))["state"] in ("passed", "failed") and b, timeout=120
    )
    assert done["state"] == "passed", done
    assert [s["key"] for s in done["steps"]] == ["pipeline-upload", "show", "fresh"]
    show = _step(done, "show")["jobs"][0]
    log = server.log(show["job_id"])
    assert f"version one at {first} on main" in log
    assert f"repo file://{path} commit {first} job {show['job_id']}" in log
    assert "fresh checkout" in server.log(_step(done, "fresh")["jobs"][0]["job_id"])
    assert "Added 2 step(s)" in server.log(_step(done, "pipeline-upload")["jobs"][0]["job_id"])
