"""Inside real jobs on a real agent process: ``bastion meta-data``, ``artifact``, ``annotate``,
``pipeline upload`` and ``secret get`` (plus a step's ``secrets:``) against a real server, with
the job token the agent hands to the job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import BASTION, Cli, cli, cli_template  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, wait_until

pytestmark = pytest.mark.slow
BUILD = "/organizations/acme/pipelines/app/builds/1"
# $$ is a literal $ for the shell: the server interpolates $VAR when it reads the file.
SECRET = "cluster-5ecret-xyz-42"
YAML = f"""
steps:
  - key: gen
    secrets: [DEPLOY_TOKEN]
    command: |
      B={BASTION}
      echo "env has $$DEPLOY_TOKEN"
      test "$$($$B secret get DEPLOY_TOKEN)" = "$$DEPLOY_TOKEN" && echo "secret get: same value"
      $$B secret get NOT_THERE || echo "NOT_THERE is unknown"
      $$B meta-data set release v42
      echo "token is $$BASTION_AGENT_ACCESS_TOKEN"
      mkdir -p out && echo report-body > out/report.txt
      $$B artifact upload 'out/*.txt'
      $$B annotate --style success 'Built **v42**'
      $$B meta-data get nothing-here || echo "no such key: ok"
      printf 'steps:\\n  - key: verify\\n    command: %s meta-data get release && %s artifact download "out/*" got && cat got/out/report.txt\\n' "$$B" "$$B" | $$B pipeline upload -
  - wait
  - key: after
    command: echo after
"""


@pytest.fixture
def server(cli: Cli, tmp_path: Path) -> Iterator[Server]:  # noqa: F811
    running = Server(cli, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _step(build: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in build["steps"] if s["key"] == key)


def test_a_job_sets_meta_data_uploads_steps_artifacts_and_an_annotation(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.yml"
    path.write_text(YAML)
    server.cli.run("pipeline", "create", "acme/app", "--file", str(path), check=True)
    secret = {"key": "DEPLOY_TOKEN", "value": SECRET}
    server.api("POST", "/organizations/acme/clusters/default/secrets", secret)
    server.agent("one")
    server.api("POST", "/organizations/acme/pipelines/app/builds", {})
    build = wait_until(
        lambda: (b := server.api("GET", BUILD))["state"] in ("passed", "failed") and b,
        timeout=90,
    )
    gen_log = server.log(_step(build, "gen")["jobs"][0]["job_id"])
    assert build["state"] == "passed", (build, gen_log)
    assert [s["key"] for s in build["steps"]] == ["gen", "verify", "step-2", "after"]
    assert build["meta_data"] == {"release": "v42"}
    assert [(a["context"], a["style"], a["body"]) for a in build["annotations"]] == [
        ("default", "success", "Built **v42**")
    ]
    assert "Added 1 step(s): verify" in gen_log and "no such key: ok" in gen_log
    assert "token is " in gen_log and "bstjob_" not in gen_log  # the job token is redacted
    assert "env has [REDACTED]" in gen_log and SECRET not in gen_log  # the step's secret
    assert "secret get: same value" in gen_log and "NOT_THERE is unknown" in gen_log
    verify_log = server.log(_step(build, "verify")["jobs"][0]["job_id"])
    assert "v42" in verify_log and "report-body" in verify_log
    # The wait after the uploading step waited for the uploaded step too.
    assert _step(build, "after")["started_at"] >= _step(build, "verify")["finished_at"]
