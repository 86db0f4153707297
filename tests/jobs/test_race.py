"""Concurrent polls from many agents: every job is assigned exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection, connections

from bastion.jobs import dispatch
from bastion.jobs.models import Agent, Job, JobState
from tests.jobs.helpers import World

AGENTS = 4
JOBS = 40


@pytest.mark.django_db(transaction=True)
def test_concurrent_polls_assign_each_job_to_exactly_one_agent() -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("threads cannot share the in-memory test database: see the process race below")
    world = World()
    agents = [world.agent(name=f"racer-{n}")[0] for n in range(AGENTS)]
    jobs = [world.job(f"echo {n}").pk for n in range(JOBS)]
    taken: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(AGENTS)

    def race(agent: Agent) -> None:
        try:
            start.wait(timeout=10)
            for _ in range(JOBS * 2):  # bounded: at most every job, twice over
                job = dispatch.poll(agent)
                if job is None:
                    return
                with lock:
                    taken.append((job.pk, agent.pk))
                dispatch.accept(agent, job.pk)
                dispatch.finish(dispatch.start(job), 0)
        except BaseException as exc:  # noqa: BLE001  reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    counts = Counter(pk for pk, _ in taken)
    assert sorted(counts) == sorted(jobs) and set(counts.values()) == {1}
    assert Job.objects.filter(pk__in=jobs, state=JobState.PASSED).count() == JOBS
    assert len({agent for _, agent in taken}) > 1  # they really did race


def test_concurrent_agent_processes_on_a_sqlite_file_assign_each_job_once(tmp_path: Path) -> None:
    """The production SQLite set-up (a WAL file, IMMEDIATE transactions) raced by 4 processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "bastion.settings"})
    worker = [sys.executable, str(Path(__file__).with_name("race_worker.py"))]

    def run(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*worker, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    setup = run("setup", str(JOBS), str(AGENTS))
    out, err = setup.communicate(timeout=120)
    assert setup.returncode == 0, err
    racers = [run("race", str(agent_id)) for agent_id in json.loads(out)]
    taken: list[int] = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        taken += json.loads(out)
    counts = Counter(taken)
    assert len(counts) == JOBS and set(counts.values()) == {1}
