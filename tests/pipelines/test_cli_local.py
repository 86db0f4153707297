"""The real ``bastion pipeline`` and ``bastion build`` commands on their own local database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli, cli, cli_template  # noqa: F401  (fixtures)


def _setup(cli: Cli) -> None:  # noqa: F811
    cli.run("org", "create", "acme", check=True)
    cli.run("cluster", "create", "acme", "default", check=True)


def test_pipeline_create_and_builds_that_need_no_agent(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    _setup(cli)
    good = tmp_path / "pipeline.yml"
    good.write_text(
        "steps:\n"
        "  - command: echo only-on-main\n    branches: main\n"
        "  - wait\n"
        "  - trigger: missing-pipeline\n    key: deploy\n    branches: release/*\n"
    )
    made = cli.run("pipeline", "create", "acme/app", "--file", str(good), "--json", check=True)
    assert json.loads(made.stdout)["slug"] == "app"
    again = cli.run("pipeline", "create", "acme/app", "--file", str(good))
    assert again.returncode == 1 and "already exists" in again.stderr

    # On a feature branch every step is filtered out: nothing to run, the build passes at once.
    skipped = cli.run("build", "create", "acme/app", "--branch", "feature/x", "--wait", "--json")
    assert skipped.returncode == 0, skipped.stderr
    body = json.loads(skipped.stdout)
    assert body["state"] == "passed" and body["number"] == 1
    assert [s["state"] for s in body["steps"]] == ["skipped", "passed", "skipped"]

    # On release/1 the trigger names a pipeline that does not exist: the build fails, exit 1.
    failed = cli.run("build", "create", "acme/app", "--branch", "release/1", "--wait")
    assert failed.returncode == 1
    assert "Build #2 of acme/app: failed" in failed.stdout

    started = cli.run("build", "create", "acme/app", "--env", "A=1", "--json", check=True)
    assert json.loads(started.stdout)["state"] == "running"  # waits for an agent; not waited for


def test_bad_input_fails_with_a_message(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    _setup(cli)
    bad = tmp_path / "bad.yml"
    bad.write_text("steps:\n  - command: echo\n    key: a\n  - command: [oops\n")
    result = cli.run("pipeline", "create", "acme/app", "--file", str(bad))
    assert result.returncode == 1 and "line 5" in result.stderr
    assert cli.run("pipeline", "create", "acme", "--file", str(bad)).returncode == 2
    missing = cli.run("build", "create", "acme/nope")
    assert missing.returncode == 1 and "no pipeline acme/nope" in missing.stderr
    assert cli.run("build", "create", "acme/nope", "--env", "novalue").returncode == 2


def test_pipeline_schedule_add_and_list(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    _setup(cli)
    path = tmp_path / "pipeline.yml"
    path.write_text("steps:\n  - command: echo nightly\n")
    cli.run("pipeline", "create", "acme/app", "--file", str(path), check=True)
    added = cli.run(
        "pipeline", "schedule", "add", "acme/app", "--cron", "0 2 * * *", "--timezone",
        "Europe/Lisbon", "--env", "NIGHTLY=1", "--json", check=True,
    )  # fmt: skip
    row = json.loads(added.stdout)
    assert (row["cron"], row["branch"], row["env"]) == ("0 2 * * *", "main", ["NIGHTLY"])
    assert len(row["next_runs"]) == 3
    listed = cli.run("pipeline", "schedule", "list", "acme/app", check=True)
    assert "0 2 * * *" in listed.stdout and "Europe/Lisbon" in listed.stdout
    bad = cli.run("pipeline", "schedule", "add", "acme/app", "--cron", "every night")
    assert bad.returncode == 1 and "cron" in bad.stderr
    assert (
        cli.run("pipeline", "schedule", "add", "acme/nope", "--cron", "* * * * *").returncode == 1
    )
