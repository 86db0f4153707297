"""Benchmark: a 200-step fan-out/fan-in pipeline on 4 local agents against a real server.

Run: .venv/bin/python bench/pipelines.py [--steps 200] [--agents 4] [--job-seconds 1.0]
     [--database sqlite|postgresql]

A fresh database (a new SQLite file, or a PostgreSQL database ``bench_pipelines`` on
127.0.0.1:5432 dropped afterwards), a real server (gunicorn, 2 workers x 8 threads), the
scheduler process and N ``bastion agent start`` processes. The pipeline: one ``start`` step, then
``steps - 2`` steps that each depend on it and sleep ``--job-seconds``, then ``end`` that depends
on all of them. The build is triggered through the HTTP API. Measured:

* wall: from the trigger request to the end of the last job;
* critical path: the best any scheduler could do with the measured job runtimes on N agents,
  ``start + max(longest middle job, sum(middle jobs) / N) + end``; overhead = wall / critical - 1;
* dispatch latency, per job: from the moment the job could have started (it existed and its agent
  was free: ``max(job created, the agent's previous job finished)``) to its start;
* the dispatch phases (medians): ready to assigned (the poll), assigned to accepted, accepted
  to started (each one agent request);
* server CPU per job: user + system CPU of the gunicorn and scheduler processes (psutil) during
  the build, divided by the number of jobs.

The last line is ``RESULT pipelines dispatch_p50_s=... overhead_pct=...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _support import BIN, PG_ADMIN_URL, free_port, percentile, wait_until

PG_DB = "bench_pipelines"


def pipeline_yaml(steps: int, seconds: float) -> str:
    lines = ["steps:", "  - key: start", "    command: echo start"]
    middle = [f"m{n}" for n in range(steps - 2)]
    for key in middle:
        lines += [f"  - key: {key}", "    depends_on: start", f"    command: sleep {seconds}"]
    lines += ["  - key: end", f"    depends_on: [{', '.join(middle)}]", "    command: echo end"]
    return "\n".join(lines) + "\n"


def _setup(steps: int, seconds: float) -> tuple[str, str]:
    from bastion.core import services as core
    from bastion.core.access import Principal
    from bastion.core.context import Actor
    from bastion.core.models import Role
    from bastion.jobs import services as jobs
    from bastion.pipelines import services as pipelines

    org = core.create_organization(Actor.system("bench"), name="Bench", slug="bench", owner=None)
    principal = Principal.system("bench", organization=org)
    cluster = jobs.create_cluster(principal, org, name="default")
    agent_token = jobs.create_agent_token(principal, cluster).plaintext
    api_token = core.create_api_token(principal, org, name="bench", role=Role.OWNER).plaintext
    pipelines.create_pipeline(
        principal, org, slug="fan", yaml=pipeline_yaml(steps, seconds), cluster=cluster
    )
    return agent_token, api_token


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.post(f"{url}/api/v1/agent/poll", timeout=10).status_code == 401
    except httpx.TransportError:
        return False


def _cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for proc in [process, *process.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _measure(build_id: int, agents: int) -> dict[str, Any]:
    from bastion.pipelines.models import BuildJob

    rows = list(
        BuildJob.objects.filter(build_id=build_id, superseded=False)
        .select_related("job", "step")
        .order_by("pk")
    )
    jobs = [r.job for r in rows if r.job is not None]
    assert len(jobs) == len(rows), "every step has its job"
    runtime = {j.pk: (j.finished_at - j.started_at).total_seconds() for j in jobs}  # type: ignore[operator]
    by_key = {r.step.key: r.job for r in rows}
    middle = [runtime[j.pk] for k, j in by_key.items() if k not in ("start", "end")]  # type: ignore[union-attr]
    start, end = by_key["start"], by_key["end"]
    assert start is not None and end is not None
    critical = runtime[start.pk] + max(max(middle), sum(middle) / agents) + runtime[end.pk]
    latencies: list[float] = []
    phases: dict[str, list[float]] = {"assign": [], "accept": [], "start": []}
    free_at: dict[int, Any] = {}
    for job in sorted(jobs, key=lambda j: j.started_at):  # type: ignore[arg-type, return-value]
        ready = max(job.created_at, free_at.get(job.agent_id, job.created_at))  # type: ignore[arg-type]
        latencies.append((job.started_at - ready).total_seconds())  # type: ignore[operator]
        phases["assign"].append((job.assigned_at - ready).total_seconds())  # type: ignore[operator]
        phases["accept"].append((job.accepted_at - job.assigned_at).total_seconds())  # type: ignore[operator]
        phases["start"].append((job.started_at - job.accepted_at).total_seconds())  # type: ignore[operator]
        free_at[job.agent_id] = job.finished_at  # type: ignore[index]
    return {
        "jobs": len(jobs),
        "critical_s": critical,
        "last_finished": max(j.finished_at for j in jobs),  # type: ignore[type-var]
        "dispatch_p50_s": statistics.median(latencies),
        "dispatch_p99_s": percentile(latencies, 0.99),
        "dispatch_max_s": max(latencies),
        "agents_used": len({j.agent_id for j in jobs}),
        **{f"{k}_p50_s": statistics.median(v) for k, v in phases.items()},
    }


def _spawn(args: list[str], log: Any, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.management import call_command

    from bastion.cli import setup_django

    setup_django()
    import httpx

    from bastion.pipelines.models import Build

    call_command("migrate", interactive=False, verbosity=0)
    agent_token, api_token = _setup(args.steps, args.job_seconds)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = Path(os.environ["BASTION_DATA_DIR"])
    log = (work / "processes.log").open("wb")
    server: list[subprocess.Popen[bytes]] = []
    agents: list[subprocess.Popen[bytes]] = []
    try:
        server.append(_spawn(
            [str(BIN / "gunicorn"), "bastion.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--worker-class", "gthread", "--threads", "8",
             "--timeout", "120", "--log-level", "warning"],
            log,
        ))  # fmt: skip
        server.append(_spawn([str(BIN / "bastion"), "scheduler"], log))
        wait_until(lambda: _ready(url), 300, 0.5)
        for n in range(args.agents):
            agents.append(_spawn(
                [str(BIN / "bastion"), "agent", "start", "--server", url, "--name", f"bench-{n}",
                 "--tags", "queue=default"],
                log, BASTION_AGENT_TOKEN=agent_token,
            ))  # fmt: skip
        from bastion.jobs.models import Agent

        wait_until(lambda: Agent.objects.filter(state="idle").count() == args.agents, 300, 0.5)
        time.sleep(1.0)
        cpu_before = _cpu([p.pid for p in server])
        triggered = time.time()
        response = httpx.post(
            f"{url}/api/v1/organizations/bench/pipelines/fan/builds",
            json={"branch": "main"},
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=120,
        )
        response.raise_for_status()
        build_id = response.json()["id"]
        bound = 60 + args.steps * args.job_seconds * 2
        state = wait_until(
            lambda: (s := Build.objects.get(pk=build_id).state) in ("passed", "failed") and s,
            bound, 0.2,
        )  # fmt: skip
        cpu = _cpu([p.pid for p in server]) - cpu_before
        assert state == "passed", f"the build {state}"
    finally:
        for proc in [*agents, *server]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*agents, *server]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()
    figures = _measure(build_id, args.agents)
    wall = figures.pop("last_finished").timestamp() - triggered
    return {
        **figures,
        "wall_s": wall,
        "overhead_pct": (wall / figures["critical_s"] - 1) * 100,
        "server_cpu_ms_per_job": cpu * 1000 / figures["jobs"],
    }


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.steps < 3 or args.agents < 1:
        parser.error("at least 3 steps and 1 agent")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    for key in [k for k in os.environ if k.startswith("BASTION_")]:
        del os.environ[key]
    os.environ.update(
        {"BASTION_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "bastion.settings"}
    )
    if args.database == "postgresql":
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {PG_DB}")
        os.environ["BASTION_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{PG_DB}"
    try:
        r = run(args)
    finally:
        if args.database == "postgresql":
            from django.db import connections

            connections.close_all()
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"pipelines benchmark: {args.steps}-step fan-out/fan-in, {args.agents} agents, "
          f"{args.job_seconds:g} s jobs, {args.database} (gunicorn 2 workers x 8 threads)")  # fmt: skip
    header = (
        f"{'jobs':>5} {'wall s':>8} {'critical s':>10} {'overhead %':>10} {'p50 s':>7} "
        f"{'p99 s':>7} {'max s':>7} {'cpu ms/job':>10} {'agents':>6}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{r['jobs']:>5} {r['wall_s']:>8.2f} {r['critical_s']:>10.2f} {r['overhead_pct']:>10.2f} "
        f"{r['dispatch_p50_s']:>7.3f} {r['dispatch_p99_s']:>7.3f} {r['dispatch_max_s']:>7.3f} "
        f"{r['server_cpu_ms_per_job']:>10.1f} {r['agents_used']:>6}"
    )
    print(
        f"dispatch phases, medians: ready->assigned {r['assign_p50_s']:.3f} s, "
        f"assigned->accepted {r['accept_p50_s']:.3f} s, accepted->started {r['start_p50_s']:.3f} s"
    )
    print(
        f"RESULT pipelines dispatch_p50_s={r['dispatch_p50_s']:.3f} "
        f"dispatch_p99_s={r['dispatch_p99_s']:.3f} overhead_pct={r['overhead_pct']:.2f} "
        f"wall_s={r['wall_s']:.2f} critical_s={r['critical_s']:.2f} "
        f"server_cpu_ms_per_job={r['server_cpu_ms_per_job']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
