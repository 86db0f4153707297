"""A real ``bastion agent start`` process runs ``browser`` jobs from the live server in Chromium:
a fault fails its job, and the agent survives and takes the next one."""

from __future__ import annotations

import json

import pytest

from bastion.browser.executor import RESULT_MARKER
from bastion.jobs import dispatch
from bastion.jobs.models import Job, JobState
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.jobs.helpers import World
from tests.labs.browser_site.server import LabServer

pytestmark = pytest.mark.slow


def _finished(job: Job) -> Job | None:
    job.refresh_from_db()
    return job if job.is_finished else None


def _log(job: Job) -> str:
    return "".join(data for _, data in dispatch.read_log(job))


def _payload(lab: LabServer, test: dict[str, object]) -> dict[str, object]:
    return {
        "tests": [test],
        "base_url": lab.url,
        "video": False,
        "artifact_paths": ["browser-results.json"],
    }


def test_agent_runs_browser_jobs_and_survives_a_fault(agents: Agents, lab: LabServer) -> None:  # noqa: F811
    world = World()
    greet = {
        "name": "greet",
        "start_url": "/form",
        "steps": [
            {"type": "#name", "value": "Ada"},
            {"click": "#go"},
            {"assert_text": "Hello, Ada (r)", "target": "#out"},
        ],
    }
    first = world.job(kind="browser", payload=_payload(lab, greet), timeout_s=300)
    proc = agents.start(world.token)
    done = wait_for(lambda: _finished(first), timeout=180)
    assert (done.state, done.exit_status) == (JobState.PASSED, 0), _log(done)
    text = _log(done)
    assert "[step] greet 3 assert_text passed" in text
    marker = next(line for line in text.splitlines() if line.startswith(RESULT_MARKER))
    assert json.loads(marker[len(RESULT_MARKER) :])[0]["status"] == "passed"

    hang = {"name": "hangs", "start_url": "/hang", "timeout_ms": 1500, "steps": [{"log": "never"}]}
    second = world.job(kind="browser", payload=_payload(lab, hang), timeout_s=300)
    failed = wait_for(lambda: _finished(second), timeout=180)
    assert (failed.state, failed.exit_status) == (JobState.FAILED, 1)
    assert f"page did not load within 1500 ms: {lab.url}/hang" in _log(failed)

    third = world.job(kind="browser", payload=_payload(lab, greet), timeout_s=300)
    assert wait_for(lambda: _finished(third), timeout=180).state == JobState.PASSED
    assert proc.poll() is None
