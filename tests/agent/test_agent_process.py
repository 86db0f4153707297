"""Real ``bastion agent start`` processes against the live server: the whole execution model."""

from __future__ import annotations

import re
import signal
from typing import Any

import pytest

from bastion.jobs import dispatch
from bastion.jobs.models import Agent, AgentState, Job, JobState
from tests.agent.conftest import Agents, kill_group_quietly, process_gone, wait_for
from tests.jobs.helpers import World

pytestmark = pytest.mark.slow


def finished(job: Job) -> Job | None:
    job.refresh_from_db()
    return job if job.is_finished else None


def log_text(job: Job) -> str:
    return "".join(data for _, data in dispatch.read_log(job))


def test_command_job_runs_streams_its_log_and_exit_status(agents: Agents) -> None:
    world = World()
    stranger = World("elsewhere")
    sibling = World("sibling", org=world.org)
    theirs = stranger.job("echo not yours")
    other_cluster = sibling.job("echo not this cluster")
    job = world.job(
        payload={
            "command": 'echo "hello $GREETING"; echo oops >&2; echo "key=$DEPLOY_TOKEN"; '
            'test -z "$(ls -A)" && echo fresh-dir; exit 3',
            "env": {"GREETING": "world", "DEPLOY_TOKEN": "tok-1234567890-secret"},
        }
    )
    proc = agents.start(world.token, "--name", "runner-1")
    done = wait_for(lambda: finished(job))
    assert (done.state, done.exit_status) == (JobState.FAILED, 3)
    text = log_text(done)
    assert "hello world" in text and "oops" in text and "fresh-dir" in text
    # Redacted by the agent (the name looks secret; the job did not even declare it).
    assert "tok-1234567890-secret" not in text and "key=[REDACTED]" in text
    agent = Agent.objects.get(name="runner-1")
    assert done.agent_id == agent.pk and agent.state == AgentState.IDLE
    # Cluster isolation with a real agent: the other cluster's and organization's jobs wait.
    for other in (theirs, other_cluster):
        other.refresh_from_db()
        assert other.state == JobState.SCHEDULED and other.agent_id is None
    second = world.job("echo again")
    assert wait_for(lambda: finished(second)).state == JobState.PASSED
    assert proc.poll() is None


def test_cancel_is_seen_within_two_seconds_and_the_process_group_is_killed(
    agents: Agents,
) -> None:
    world = World()
    # The background child ignores SIGTERM, so only the SIGKILL after the grace period ends it.
    job = world.job("(trap '' TERM; sleep 300) & echo child=$!; echo shell=$$; wait")
    agents.start(world.token, "--cancel-grace-period", "1")
    pids = wait_for(lambda: re.findall(r"(child|shell)=(\d+)", log_text(job)), timeout=15)
    found = {name: int(pid) for name, pid in pids}
    assert set(found) == {"child", "shell"}
    try:
        dispatch.cancel_job(world.principal, job)
        # Seen within 2 s, SIGTERM, 1 s grace, SIGKILL, finish: well within 5 s.
        done = wait_for(lambda: finished(job), timeout=5)
        assert done.state == JobState.CANCELED and done.signal_reason == "cancel"
        assert done.exit_status == 143  # the shell died of SIGTERM
        assert "SIGKILL" in log_text(done)
        assert wait_for(lambda: process_gone(found["child"]), timeout=3)
        assert process_gone(found["shell"])
    finally:
        kill_group_quietly(found["shell"])


def test_agent_killed_mid_job_is_lost_after_the_sweep(agents: Agents) -> None:
    world = World()
    job = world.job("echo shell=$$; sleep 300")
    proc = agents.start(world.token)
    shell = int(wait_for(lambda: re.findall(r"shell=(\d+)", log_text(job)))[0])
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        report = wait_for(lambda: dispatch.sweep().agents_lost, timeout=10)
        assert report == 1
        job.refresh_from_db()
        assert (job.state, job.exit_status) == (JobState.LOST, -1)
        assert Agent.objects.get(pk=job.agent_id).state == AgentState.LOST
    finally:
        kill_group_quietly(shell)


def test_timeout_cancels_the_job_as_timed_out(agents: Agents) -> None:
    world = World()
    job = world.job("sleep 300", timeout_s=1)
    agents.start(world.token, "--cancel-grace-period", "1")
    wait_for(lambda: Job.objects.filter(pk=job.pk, state=JobState.RUNNING).exists())

    def swept_and_finished() -> Job | None:
        dispatch.sweep()  # what the scheduler does every second
        return finished(job)

    done = wait_for(swept_and_finished, timeout=10, step=0.2)
    assert done.state == JobState.TIMED_OUT and done.exit_status == 143


def test_graceful_stop_finishes_the_job_then_disconnects(agents: Agents) -> None:
    world = World()
    job = world.job("sleep 1; echo finished-cleanly")
    proc = agents.start(world.token, "--name", "graceful")
    wait_for(lambda: Job.objects.filter(pk=job.pk, state=JobState.RUNNING).exists())
    later = world.job("echo not for a leaving agent")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    job.refresh_from_db()
    assert job.state == JobState.PASSED and "finished-cleanly" in log_text(job)
    assert Agent.objects.get(name="graceful").state == AgentState.DISCONNECTED
    # Its finish did not ask for the next job: that one waits for another agent.
    later.refresh_from_db()
    assert later.state == JobState.SCHEDULED and later.agent_id is None


def test_the_last_chunk_rides_on_finish_and_the_next_job_comes_back_with_it(
    agents: Agents,
) -> None:
    world = World()
    # More than one upload chunk of output as the job ends: what the final flush holds beyond
    # one chunk goes through /log, its last piece on /finish; nothing is lost or out of order.
    first = world.job(
        payload={
            "command": "sleep 0.2; head -c 300000 /dev/zero | tr '\\0' x; echo; "
            'echo "last line $DEPLOY_TOKEN"',
            "env": {"DEPLOY_TOKEN": "tok-abcdef-123456"},
        }
    )
    second = world.job("echo second")
    proc = agents.start(world.token, "--name", "chained")
    done = [wait_for(lambda job=job: finished(job)) for job in (first, second)]
    assert [job.state for job in done] == [JobState.PASSED, JobState.PASSED]
    assert log_text(done[0]) == "x" * 300_000 + "\nlast line [REDACTED]\n"
    seqs = [seq for seq, _ in dispatch.read_log(done[0])]
    assert seqs == list(range(len(seqs))) and len(seqs) >= 2
    assert log_text(done[1]) == "second\n"
    assert done[1].agent_id == done[0].agent_id
    assert "the finish answer handed out the next job" in agents.output(proc)
    assert proc.poll() is None


def test_unknown_kind_fails_clearly_and_disconnect_after_job(agents: Agents) -> None:
    world = World()
    scan = world.job(kind="scan", payload={"target": "http://127.0.0.1:1/"})
    # A kind this agent has no executor for (as if the server were newer than the agent).
    Job.objects.filter(pk=scan.pk).update(kind="future-kind")
    later = world.job("echo never by this agent", priority=-1)
    proc = agents.start(world.token, "--disconnect-after-job")
    assert proc.wait(timeout=20) == 0
    scan.refresh_from_db()
    assert scan.state == JobState.FAILED and scan.signal_reason == "agent_refused"
    assert "no executor for job kind 'future-kind'" in log_text(scan)
    later.refresh_from_db()
    assert later.state == JobState.SCHEDULED


def test_revoked_token_stops_the_agent(agents: Agents) -> None:
    from bastion.jobs import services

    world = World()
    issued = services.create_agent_token(world.principal, world.cluster)
    services.revoke_agent_token(world.principal, issued.token)
    proc = agents.start(issued.plaintext)
    assert proc.wait(timeout=20) == 1
    assert "registration refused" in agents.output(proc)
    assert not Agent.objects.exists()


def test_an_agent_marked_lost_stops_on_401(agents: Agents, settings: Any) -> None:
    world = World()
    proc = agents.start(world.token, "--name", "to-be-lost")
    agent = wait_for(lambda: Agent.objects.filter(name="to-be-lost").first())
    Agent.objects.filter(pk=agent.pk).update(state=AgentState.LOST)
    assert proc.wait(timeout=15) == 1


def test_second_stop_signal_cancels_the_running_job_and_exits(agents: Agents) -> None:
    world = World()
    job = world.job("echo shell=$$; sleep 300")
    proc = agents.start(world.token, "--name", "impatient", "--cancel-grace-period", "1")
    shell = int(wait_for(lambda: re.findall(r"shell=(\d+)", log_text(job)))[0])
    try:
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stop signal" in agents.output(proc), timeout=5)
        assert proc.poll() is None  # the first signal waits for the job
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        job.refresh_from_db()
        assert job.state == JobState.FAILED and job.signal_reason == "agent_stop"
        assert job.exit_status == 143 and process_gone(shell)
        assert Agent.objects.get(name="impatient").state == AgentState.DISCONNECTED
    finally:
        kill_group_quietly(shell)


def test_artifact_paths_are_uploaded_after_the_command(agents: Agents) -> None:
    from bastion.jobs.models import Artifact

    world = World()
    job = world.job(
        payload={
            "command": "mkdir -p out && echo report > out/report.txt && echo x > out/skip.log "
            "&& ln -s /etc/hostname out/link.txt && exit 1",
            "artifact_paths": ["out/*.txt", "../escape/*"],
        }
    )
    agents.start(world.token)
    done = wait_for(lambda: finished(job))
    assert done.state == JobState.FAILED  # uploaded whatever the exit status
    artifacts = list(Artifact.objects.filter(job=done))
    assert [a.path for a in artifacts] == ["out/report.txt"]  # no symlink, no other glob
    with artifacts[0].file.open("rb") as stored:
        assert stored.read() == b"report\n"
    text = log_text(done)
    assert "uploaded artifact out/report.txt" in text and "must stay inside the job" in text


def test_output_without_newline_streams_while_the_job_runs(agents: Agents) -> None:
    world = World()
    job = world.job("printf 'progress 50%%'; sleep 300", timeout_s=60)
    agents.start(world.token, "--cancel-grace-period", "1")
    assert wait_for(lambda: "progress 50%" in log_text(job), timeout=15)
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    dispatch.cancel_job(world.principal, job)
    assert wait_for(lambda: finished(job)).state == JobState.CANCELED


def test_spawn_runs_named_agents_that_share_the_work_and_stop_together(agents: Agents) -> None:
    world = World()
    proc = agents.start(world.token, "--name", "pool", "--spawn", "2")
    wait_for(lambda: Agent.objects.filter(name__startswith="pool-").count() == 2, timeout=30)
    jobs = [world.job(f"sleep 1; echo job-{n}") for n in range(4)]
    done = [wait_for(lambda job=job: finished(job), timeout=30) for job in jobs]
    assert all(job.state == JobState.PASSED for job in done)
    pool = {agent.name: agent.pk for agent in Agent.objects.filter(name__startswith="pool-")}
    assert set(pool) == {"pool-1", "pool-2"}
    assert {job.agent_id for job in done} == set(pool.values())  # both took work

    proc.send_signal(signal.SIGTERM)  # forwarded: each child disconnects gracefully
    assert proc.wait(timeout=15) == 0
    states = set(Agent.objects.filter(name__startswith="pool-").values_list("state", flat=True))
    assert states == {AgentState.DISCONNECTED}
    assert agents.output(proc).count("BASTION_AGENT_TOKEN") == 0


def test_spawn_out_of_range_is_refused(agents: Agents) -> None:
    proc = agents.start(World().token, "--spawn", "0")
    assert proc.wait(timeout=15) == 2 and "--spawn" in agents.output(proc)
