"""Benchmark: job dispatch latency and throughput through real agents, SQLite and PostgreSQL.

Run: .venv/bin/python bench/jobs.py [--jobs 1000] [--latency-jobs 50] [--agents 4]

For each database a fresh one is made (a new SQLite file; a PostgreSQL database ``bench_jobs``
on 127.0.0.1:5432 that is dropped afterwards). A real server (gunicorn, 2 workers x 8 threads,
``bastion.wsgi:application`` on a free loopback port) and 4 ``bastion agent start`` processes
run against it. Measured:

* dispatch latency: a job is created while every agent is idle; latency = job.started_at -
  job.created_at (the agent has polled, accepted and started it). One job at a time.
* throughput: N trivial jobs (each appends its id to a file) queued at once on a paused queue,
  then released; jobs/s until the last one finished. Every job must pass exactly once: a job id
  missing from the file or not passed is lost, an id written twice is duplicated.

Each database runs in a child process (Django is configured once per process). The last line is
``RESULT jobs ...`` with the figures of the worse of the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _support import BIN, PG_ADMIN_URL, ROOT, free_port, percentile, wait_until

PG_BENCH_DB = "bench_jobs"


def _setup_world() -> str:
    from bastion.core import services as core
    from bastion.core.access import Principal
    from bastion.core.context import Actor
    from bastion.jobs import services

    org = core.create_organization(Actor.system("bench"), name="Bench", slug="bench", owner=None)
    principal = Principal.system("bench", organization=org)
    cluster = services.create_cluster(principal, org, name="bench")
    return services.create_agent_token(principal, cluster).plaintext


def _server_ready(url: str) -> bool:
    import httpx

    try:
        return httpx.post(f"{url}/api/v1/agent/poll", timeout=2).status_code == 401
    except httpx.TransportError:
        return False


def _create(command: str, label: str) -> Any:
    from bastion.core.access import Principal
    from bastion.core.models import Organization
    from bastion.jobs import dispatch
    from bastion.jobs.models import Cluster

    org = Organization.objects.get(slug="bench")
    cluster = Cluster.objects.get(organization=org, name="bench")
    return dispatch.create_job(
        Principal.system("bench", organization=org),
        org,
        cluster,
        kind="command",
        payload={"command": command},
        label=label,
    )


def _measure_latency(count: int, runs_file: Path) -> list[float]:
    from bastion.jobs.models import Job

    latencies = []
    for n in range(count):
        job = _create(f'echo "$BASTION_JOB_ID" >> {runs_file}', f"latency {n}")
        done = wait_until(
            lambda job=job: Job.objects.filter(pk=job.pk, finished_at__isnull=False).first(), 30
        )
        assert done.started_at is not None, f"job {done.pk} finished as {done.state}"
        latencies.append((done.started_at - done.created_at).total_seconds())
        time.sleep(0.05)  # let the agent go back to its long poll: measure an idle agent
    return latencies


def _measure_throughput(count: int, runs_file: Path) -> dict[str, Any]:
    from bastion.jobs.models import Job, JobState, Queue

    Queue.objects.filter(cluster__name="bench", key="default").update(paused=True)
    ids = [_create(f'echo "$BASTION_JOB_ID" >> {runs_file}', f"bulk {n}").pk for n in range(count)]
    started = time.monotonic()
    Queue.objects.filter(cluster__name="bench", key="default").update(paused=False)
    bound = max(120.0, count * 0.5)
    wait_until(
        lambda: not Job.objects.filter(pk__in=ids, finished_at__isnull=True).exists(), bound, 0.1
    )
    elapsed = time.monotonic() - started
    passed = set(Job.objects.filter(pk__in=ids, state=JobState.PASSED).values_list("pk", flat=True))
    runs = Counter(int(line) for line in runs_file.read_text().split() if line.strip())
    lost = sum(1 for pk in ids if pk not in passed or runs[pk] == 0)
    duplicated = sum(1 for pk in ids if runs[pk] > 1)
    phases = _phases(ids)
    return {"jobs": count, "seconds": elapsed, "jobs_per_s": count / elapsed, "lost": lost,
            "duplicated": duplicated, "phases": phases}  # fmt: skip


def _phases(ids: list[int]) -> dict[str, float]:
    """Mean seconds per step of a job's life on the agent, to see where time goes."""
    from bastion.jobs.models import Job

    rows = Job.objects.filter(pk__in=ids, finished_at__isnull=False, started_at__isnull=False)
    sums = {"assigned>accepted": 0.0, "accepted>started": 0.0, "started>finished": 0.0}
    n = 0
    for job in rows:
        assert job.assigned_at and job.accepted_at and job.started_at and job.finished_at
        sums["assigned>accepted"] += (job.accepted_at - job.assigned_at).total_seconds()
        sums["accepted>started"] += (job.started_at - job.accepted_at).total_seconds()
        sums["started>finished"] += (job.finished_at - job.started_at).total_seconds()
        n += 1
    return {k: v / max(n, 1) for k, v in sums.items()}


def _run_one(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    from django.core.management import call_command

    from bastion.cli import setup_django

    setup_django()
    call_command("migrate", interactive=False, verbosity=0)
    token = _setup_world()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = Path(os.environ["BASTION_DATA_DIR"])
    procs: list[subprocess.Popen[bytes]] = []
    logs = (work / "processes.log").open("wb")
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "bastion.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--worker-class",
                    "gthread",
                    "--threads",
                    "8",
                    "--timeout",
                    "60",
                    "--log-level",
                    "warning",
                ],
                stdout=logs,
                stderr=subprocess.STDOUT,
            )
        )
        wait_until(lambda: _server_ready(url), 30, 0.2)
        for n in range(args.agents):
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "bastion"),
                        "agent",
                        "start",
                        "--server",
                        url,
                        "--name",
                        f"bench-{n}",
                        "--tags",
                        "queue=default",
                    ],
                    stdout=logs,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "BASTION_AGENT_TOKEN": token},
                )
            )
        from bastion.jobs.models import Agent

        wait_until(lambda: Agent.objects.filter(state="idle").count() == args.agents, 30, 0.1)
        time.sleep(0.5)
        latencies = _measure_latency(args.latency_jobs, work / "latency-runs.txt")
        throughput = _measure_throughput(args.jobs, work / "bulk-runs.txt")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        logs.close()
    return {
        "backend": backend,
        "dispatch_p50_s": statistics.median(latencies),
        "dispatch_p99_s": percentile(latencies, 0.99),
        "dispatch_max_s": max(latencies),
        **throughput,
    }


# --- the parent: both databases, the table, the RESULT line -----------------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _run_child(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-jobs-{backend}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "bastion.settings"})
    if backend == "postgresql":
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {PG_BENCH_DB}")
        env["BASTION_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", backend, "--jobs", str(args.jobs),
             "--latency-jobs", str(args.latency_jobs), "--agents", str(args.agents)],
            env=env, capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT,
        )  # fmt: skip
        if out.returncode != 0:
            sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
            raise SystemExit(f"the {backend} run failed (exit {out.returncode})")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        if backend == "postgresql":
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-jobs", type=int, default=50)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--child", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_run_one(args.child, args)))
        return 0
    backends = [b for b in ("sqlite", "postgresql") if b in args.databases.split(",")]
    results = [_run_child(backend, args) for backend in backends]
    header = (
        f"{'database':<11} {'dispatch p50 s':>14} {'p99 s':>7} {'max s':>7} "
        f"{'jobs':>6} {'seconds':>8} {'jobs/s':>7} {'lost':>5} {'dup':>4}"
    )
    print(f"jobs benchmark: {args.agents} agents, {args.latency_jobs} latency jobs, "
          f"{args.jobs} throughput jobs (gunicorn 2 workers x 8 threads)")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['backend']:<11} {r['dispatch_p50_s']:>14.3f} {r['dispatch_p99_s']:>7.3f} "
            f"{r['dispatch_max_s']:>7.3f} {r['jobs']:>6} {r['seconds']:>8.1f} "
            f"{r['jobs_per_s']:>7.1f} {r['lost']:>5} {r['duplicated']:>4}"
        )
    worst = {
        "dispatch_p50_s": max(r["dispatch_p50_s"] for r in results),
        "dispatch_p99_s": max(r["dispatch_p99_s"] for r in results),
        "jobs_per_s": min(r["jobs_per_s"] for r in results),
        "lost": max(r["lost"] for r in results),
        "duplicated": max(r["duplicated"] for r in results),
    }
    for r in results:
        steps = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r["phases"].items())
        print(f"{r['backend']}: mean per job: {steps}")
    print("(the RESULT line takes the worse of both databases for each figure; goal: p50 < 0.5 s)")
    print(
        f"RESULT jobs dispatch_p50_s={worst['dispatch_p50_s']:.3f} "
        f"dispatch_p99_s={worst['dispatch_p99_s']:.3f} jobs_per_s={worst['jobs_per_s']:.1f} "
        f"lost={worst['lost']} duplicated={worst['duplicated']}"
    )
    return 0 if worst["lost"] == 0 and worst["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
