"""Faults on a real agent: one ``browser`` job meets an invalid selector, endless dialogs, an
unexpected download, an unexpected pop-up and a target that hangs mid-test — every test fails
with its reason and the job finishes; then the agent's Chromium is killed mid-step — that test
fails as a crash — and the same agent process takes the next job and passes it."""

from __future__ import annotations

import json

import psutil
import pytest
from django.db import OperationalError

from bastion.browser.executor import RESULT_MARKER
from bastion.jobs import dispatch
from bastion.jobs.models import Job, JobState
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.jobs.helpers import World
from tests.labs.browser_site.server import LabServer

pytestmark = pytest.mark.slow

FAULTS = [
    {"name": "selector", "start_url": "/form", "steps": [{"click": "css=##x"}]},
    {"name": "dialogs", "start_url": "/dialogs", "steps": [{"click": "#endless"}]},
    {"name": "download", "start_url": "/downloads", "steps": [{"click": "#dl"}, {"wait": 1500}]},
    {"name": "popup", "start_url": "/tabs", "steps": [{"click": "#popup"}, {"wait": 1500}]},
    {
        "name": "hang",
        "start_url": "/form",
        "timeout_ms": 1500,
        "steps": [{"goto": "/hang"}, {"log": "never"}],
    },
]
GREET = {
    "name": "greet",
    "start_url": "/form",
    "steps": [{"type": "#name", "value": "Ada"}, {"click": "#go"}],
}
CRASH = {
    "name": "crash",
    "start_url": "/form",
    "steps": [{"wait_for_element": "#never-there", "timeout_ms": 60_000}],
}


def _finished(job: Job) -> Job | None:
    try:
        job.refresh_from_db()
    except OperationalError:  # in-memory SQLite's shared cache under the live server: retry
        return None
    return job if job.is_finished else None


def _log(job: Job) -> str:
    try:
        return "".join(data for _, data in dispatch.read_log(job))
    except OperationalError:
        return ""


def _results(job: Job) -> dict[str, dict[str, object]]:
    line = next(x for x in _log(job).splitlines() if x.startswith(RESULT_MARKER))
    return {r["test"]: r for r in json.loads(line[len(RESULT_MARKER) :])}


def _payload(lab: LabServer, *tests: dict[str, object]) -> dict[str, object]:
    return {"tests": list(tests), "base_url": lab.url, "video": False}


def _kill_browser(agent_pid: int) -> int:
    """SIGKILL the agent's Chromium (the browser process, not its renderers)."""
    killed = 0
    for child in psutil.Process(agent_pid).children(recursive=True):
        try:
            cmdline = child.cmdline()
            if cmdline and "chromium" in cmdline[0] and not any("--type=" in a for a in cmdline):
                child.kill()
                killed += 1
        except psutil.Error:
            continue
    return killed


def test_faults_fail_their_tests_and_the_agent_takes_the_next_job(
    agents: Agents,  # noqa: F811
    lab: LabServer,
) -> None:
    world = World()
    # All three jobs are queued first (the agent takes them in order, one at a time).
    faults = world.job(kind="browser", payload=_payload(lab, *FAULTS), timeout_s=300)
    crash = world.job(kind="browser", payload=_payload(lab, CRASH), timeout_s=300)
    after = world.job(kind="browser", payload=_payload(lab, GREET), timeout_s=300)
    proc = agents.start(world.token)
    done = wait_for(lambda: _finished(faults), timeout=240)
    assert (done.state, done.exit_status) == (JobState.FAILED, 1), _log(done)
    results = _results(done)
    assert all(r["status"] == "failed" for r in results.values()), results
    assert str(results["selector"]["error"]).startswith("invalid selector css=##x")
    assert "endless dialogs: more than" in str(results["dialogs"]["error"])
    assert "unexpected download: 'report.txt'" in str(results["download"]["error"])
    assert "unexpected pop-up:" in str(results["popup"]["error"])
    assert str(results["hang"]["error"]).startswith("page did not load within 1500 ms")

    wait_for(lambda: "[step] crash 0 " in _log(crash), timeout=120, step=0.2)
    assert wait_for(lambda: _kill_browser(proc.pid), timeout=30, step=0.2) >= 1
    crashed = wait_for(lambda: _finished(crash), timeout=120)
    assert crashed.state == JobState.FAILED, _log(crashed)
    assert _results(crashed)["crash"]["error"] == "the browser crashed or was closed"

    assert wait_for(lambda: _finished(after), timeout=180).state == JobState.PASSED
    assert proc.poll() is None  # the same agent process, alive throughout
