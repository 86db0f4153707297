"""The agent's ``browser`` executor, found through the agent's executor registry."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from bastion.agent.executors import JobContext, executor_for
from bastion.browser.executor import RESULT_MARKER
from tests.labs.browser_site.server import LabServer

LOGIN = {
    "name": "login",
    "import_only": True,
    "steps": [
        {"goto": "/login"},
        {"type": "#username", "value": "{{user}}"},
        {"type": "#password", "value": "{{password}}"},
        {"click": 'role=button[name="Sign in"]'},
    ],
}


def _context(
    tmp_path: Path,
    payload: dict[str, Any],
    env: dict[str, str] | None = None,
    cancel_after: float | None = None,
) -> tuple[JobContext, list[str]]:
    lines: list[str] = []
    started = time.monotonic()

    def cancel_requested() -> str | None:
        if cancel_after is not None and time.monotonic() - started > cancel_after:
            return "canceled"
        return None

    ctx = JobContext(
        job_id=1,
        kind="browser",
        payload=payload,
        timeout_s=120,
        workdir=tmp_path,
        env=env or {},
        log=lines.append,
        cancel_requested=cancel_requested,
        grace_s=1.0,
    )
    return ctx, lines


def test_browser_job_runs_tests_with_modules_and_secrets(lab: LabServer, tmp_path: Path) -> None:
    run = executor_for("browser")
    assert run is not None
    payload = {
        "tests": [
            {
                "name": "signs in",
                "steps": [
                    {"module": "login", "params": {"user": "ada"}},
                    {"assert_text": "Welcome, ada", "target": "#welcome"},
                ],
            },
            {
                "name": "fails",
                "start_url": "/form",
                "timeout_ms": 2000,  # short, but room for the failure screenshot on a busy machine
                "steps": [{"click": "#nope"}],
            },
        ],
        "modules": {"login": LOGIN},
        "base_url": lab.url,
        "secret_env": ["password"],
        "concurrency": 2,
        "video": False,
    }
    ctx, lines = _context(tmp_path, payload, env={"password": "s3cret-pass"})
    outcome = run(ctx)
    assert outcome.exit_status == 1
    log = "".join(lines)
    assert "[step] signs in 1.4 click passed" in log
    assert "[test] fails FAILED" in log
    assert "s3cret-pass" not in log
    results = json.loads((tmp_path / "browser-results.json").read_text())
    assert [r["status"] for r in results] == ["passed", "failed"]
    assert lines[-1].startswith(RESULT_MARKER)
    assert json.loads(lines[-1][len(RESULT_MARKER) :]) == results
    assert (tmp_path / "artifacts" / "002" / results[1]["steps"][1]["screenshot"]).is_file()


def test_a_module_receives_a_secret_as_a_parameter_and_it_never_shows(
    lab: LabServer, tmp_path: Path
) -> None:
    run = executor_for("browser")
    assert run is not None
    echo = {
        "name": "echo",
        "import_only": True,
        "steps": [
            {"log": "{{said}}"},
            {"assert_text": "{{said}}", "target": "#welcome", "optional": True, "timeout_ms": 300},
        ],
    }
    payload = {
        "tests": [
            {
                "name": "passes a secret",
                "steps": [
                    {"module": "login", "params": {"user": "ada", "password": "{{admin_pw}}"}},
                    {"assert_text": "Welcome, ada", "target": "#welcome"},
                    {"module": "echo", "params": {"said": "pw is {{admin_pw|json}}"}},
                ],
            }
        ],
        "modules": {"login": LOGIN, "echo": echo},
        "base_url": lab.url,
        "secret_env": ["admin_pw"],
        "video": False,
    }
    ctx, lines = _context(tmp_path, payload, env={"admin_pw": "s3cret-pass"})
    assert run(ctx).exit_status == 0
    log = "".join(lines)
    results_text = (tmp_path / "browser-results.json").read_text()
    assert "s3cret-pass" not in log and "s3cret-pass" not in results_text
    (result,) = json.loads(results_text)
    assert result["status"] == "passed"
    assert result["variables"]["admin_pw"] == "****"
    assert result["variables"]["password"] == "****"  # the module's parameter
    assert result["variables"]["said"] == 'pw is "****"'
    by_index = {step["index"]: step for step in result["steps"]}
    assert by_index["1.3"]["module"] == "login" and by_index["1.3"]["status"] == "passed"
    echoed = by_index["3.2"]  # failed (optional), its error quoting the masked value
    assert echoed["status"] == "failed" and 'pw is "****"' in echoed["error"]


def test_invalid_payload_is_refused_with_the_step_named(tmp_path: Path) -> None:
    run = executor_for("browser")
    assert run is not None
    ctx, lines = _context(tmp_path, {"tests": [{"name": "t", "steps": [{"action": "click"}]}]})
    assert run(ctx).exit_status == 2
    assert 'step 1 (click): field "target": required' in "".join(lines)
    ctx, lines = _context(tmp_path, {"tests": [{"name": "t"}], "secret_env": ["TOKEN"]})
    assert run(ctx).exit_status == 2
    assert "secrets missing from the job environment: TOKEN" in "".join(lines)


def test_cancel_stops_the_job(lab: LabServer, tmp_path: Path) -> None:
    run = executor_for("browser")
    assert run is not None
    payload = {
        "tests": [{"name": "long", "start_url": "/form", "steps": [{"wait": 60_000}]}],
        "base_url": lab.url,
        "video": False,
    }
    ctx, lines = _context(tmp_path, payload, cancel_after=1.0)
    finished: list[int] = []
    worker = threading.Thread(target=lambda: finished.append(run(ctx).exit_status))
    worker.start()
    worker.join(timeout=60)
    assert finished == [130]
    assert "[browser] stopped: canceled" in "".join(lines)
