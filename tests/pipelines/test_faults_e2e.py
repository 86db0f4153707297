"""Faults with real processes (issue 6, part 8): one server shared by the module, real agent
processes, and in turn a job that floods its log, the web process restarted mid-build, and
agents SIGKILLed mid-job. Each test uses its own queue so the agents of one never take the jobs
of another. Heartbeat and lost-agent timeouts come from BASTION_AGENT_* (tests.pipelines.server
FAST), so a lost agent is noticed in seconds."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bastion.jobs.logs import DEFAULT_LOG_MAX_BYTES, TRUNCATION_NOTICE
from tests.cli.conftest import Cli, cli_template, installation  # noqa: F401  (fixtures)
from tests.pipelines.server import Server, wait_until

pytestmark = pytest.mark.slow

FLOOD_MB = 100


@pytest.fixture(scope="module")
def server(cli_template: Cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # noqa: F811
    root = tmp_path_factory.mktemp("faults")
    with installation(cli_template, root / "var") as cli:
        running = Server(cli, root)
        try:
            running.start()
            yield running
        finally:
            running.stop()


def _pipeline(server: Server, slug: str, yaml: str) -> str:
    path = server.logs / f"{slug}.yml"
    path.write_text(yaml)
    server.cli.run("pipeline", "create", f"acme/{slug}", "--file", str(path), check=True)
    return f"/organizations/acme/pipelines/{slug}/builds"


def _build(server: Server, builds: str) -> str:
    created = server.api("POST", builds, {"commit": "c0ffee"})
    return f"{builds}/{created['number']}"


def _step(build: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in build["steps"] if s["key"] == key)


def _finished(server: Server, build: str, timeout: float = 120) -> dict[str, Any]:
    return wait_until(
        lambda: (b := server.api("GET", build))["state"] in ("passed", "failed", "canceled") and b,
        timeout=timeout,
        step=0.25,
    )


def _running_job(server: Server, build: str, key: str, marker: str) -> int:
    """The job of step ``key`` once its log shows ``marker``."""
    job_id = wait_until(
        lambda: (jobs := _step(server.api("GET", build), key)["jobs"]) and jobs[-1]["job_id"],
        timeout=60,
    )
    wait_until(lambda: marker in server.log(job_id), timeout=60)
    return int(job_id)


def test_a_job_printing_100_mb_finishes_with_a_capped_log_and_the_server_answering(
    server: Server,
) -> None:
    builds = _pipeline(
        server,
        "flood",
        "agents: {queue: flood}\nsteps:\n"
        f"  - key: flood\n    command: echo begin; head -c {FLOOD_MB}000000 /dev/zero"
        " | tr '\\0' x | fold -w 99; echo end\n"
        "  - key: after\n    depends_on: flood\n    command: echo after the flood\n",
    )
    agent = server.agent("flooder", queue="flood")
    build = _build(server, builds)
    job_id = _running_job(server, build, "flood", "begin")
    # While the agent pushes the flood, the server keeps answering other requests.
    answered = [server.api("GET", "/organizations/acme/pipelines") for _ in range(5)]
    assert all(any(p["slug"] == "flood" for p in page) for page in answered)
    done = _finished(server, build, timeout=300)
    assert done["state"] == "passed", done
    assert {s["key"]: s["state"] for s in done["steps"]} == {"flood": "passed", "after": "passed"}
    job = server.api("GET", f"/jobs/{job_id}")
    assert job["log_truncated"] is True
    assert DEFAULT_LOG_MAX_BYTES <= job["log_bytes"] <= DEFAULT_LOG_MAX_BYTES + 1024
    stored = server.api("GET", f"/jobs/{job_id}/log")
    text = "".join(chunk["data"] for chunk in stored["chunks"])
    assert stored["truncated"] is True and text.endswith(TRUNCATION_NOTICE)
    assert text.startswith("begin") and "end\n" not in text  # what came after the cap is gone
    after = _step(done, "after")["jobs"][0]["job_id"]
    assert "after the flood" in server.log(after)
    assert agent.poll() is None and server.web is not None and server.web.poll() is None
    server.stop_proc(agent)


def test_a_build_continues_when_the_web_process_restarts_mid_job(server: Server) -> None:
    flag = server.logs / "restarted.flag"
    builds = _pipeline(
        server,
        "restart",
        "agents: {queue: restart}\nsteps:\n"
        "  - key: before\n    command: echo before\n"
        "  - key: across\n    depends_on: before\n    command: echo waiting;"
        f" timeout 120 sh -c 'until test -f {flag}; do sleep 0.1; done'; echo resumed\n"
        "  - key: after\n    depends_on: across\n    command: echo after the restart\n",
    )
    agent = server.agent("steady", queue="restart")
    build = _build(server, builds)
    _running_job(server, build, "across", "waiting")
    server.stop_web()
    time.sleep(1.0)  # the agent's heartbeats and log pushes fail for a while (not an assertion)
    server.start_web()
    flag.touch()  # the job ends only now, so its finish reaches the restarted server
    done = _finished(server, build)
    assert done["state"] == "passed", done
    assert {s["key"]: s["state"] for s in done["steps"]} == {
        "before": "passed", "across": "passed", "after": "passed",
    }  # fmt: skip
    assert {j["agent"] for s in done["steps"] for j in s["jobs"]} == {"steady"}
    assert "resumed" in server.log(_step(done, "across")["jobs"][0]["job_id"])
    assert "after the restart" in server.log(_step(done, "after")["jobs"][0]["job_id"])
    assert agent.poll() is None  # the same agent process reconnected; it never re-registered
    server.stop_proc(agent)


LOST = """
agents: {{queue: {queue}}}
steps:
  - key: work
    command: echo started on attempt $$BUILDKITE_RETRY_COUNT; test "$$BUILDKITE_RETRY_COUNT" = 1 || sleep 20; echo done
{retry}
"""
RETRY = "    retry:\n      automatic: [{exit_status: -1, limit: 1}]"


def test_an_agent_killed_mid_job_is_lost_then_retried_elsewhere_or_fails_the_build(
    server: Server,
) -> None:
    scheduler = server.scheduler()  # it marks silent agents lost and sweeps their builds
    retried = _build(server, _pipeline(server, "retried", LOST.format(queue="lost", retry=RETRY)))
    fragile = _build(server, _pipeline(server, "fragile", LOST.format(queue="lost2", retry="")))
    victims = [server.agent("victim", queue="lost"), server.agent("victim2", queue="lost2")]
    lost_jobs = [
        _running_job(server, retried, "work", "started on attempt 0"),
        _running_job(server, fragile, "work", "started on attempt 0"),
    ]
    for victim in victims:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    # With retry.automatic on exit -1, another agent runs the job again once the first is lost.
    rescuer = server.agent("rescuer", queue="lost")
    done = _finished(server, retried)
    assert done["state"] == "passed", done
    jobs = _step(done, "work")["jobs"]
    assert [(j["attempt"], j["state"], j["exit_status"], j["agent"]) for j in jobs] == [
        (0, "lost", -1, "victim"), (1, "passed", 0, "rescuer"),
    ]  # fmt: skip
    assert "started on attempt 1" in server.log(jobs[1]["job_id"])
    # Without it, the build fails and says why.
    failed = _finished(server, fragile)
    assert failed["state"] == "failed"
    step = _step(failed, "work")
    assert step["state"] == "failed"
    assert step["skip_reason"] == (
        f"job {lost_jobs[1]} lost: its agent stopped answering (agent_lost, exit -1)"
    )
    lost = server.api("GET", f"/jobs/{lost_jobs[1]}")
    assert (lost["state"], lost["exit_status"], lost["signal_reason"]) == ("lost", -1, "agent_lost")
    agents = {a["name"]: a["state"] for a in server.api("GET", "/organizations/acme/agents")}
    assert agents["victim"] == "lost" and agents["victim2"] == "lost"
    assert server.web is not None and server.web.poll() is None
    server.stop_proc(rescuer)
    server.stop_proc(scheduler)
