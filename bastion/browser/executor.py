"""The agent's ``browser`` executor: run the tests in the job's payload in the system Chromium.

Payload (a JSON object, built by the server from stored tests)::

    {"tests": [<test as in the YAML format>, ...],
     "modules": {"<name>": <test>, ...},        # tests the others import
     "base_url": "https://staging.example",     # optional
     "variables": {...}, "environment": {...},  # suite and environment variables
     "secret_env": ["NAME", ...],               # secrets, read from the job's environment
     "concurrency": 1, "video": true, "screenshot_every_step": false,
     "run_ids": ["<token>", ...],               # per test: its {{run.email}} is run-<token>@...
     "mail_domain": "inbox.bastion.test"}

Email steps read the run's mail from the server with the job token (``JobMailbox``).

Progress goes to the job log one step per line; the results (``RunResult.to_dict`` for each
test, in order) are written to ``browser-results.json`` in the working directory, with the
screenshots and videos under ``artifacts/``, and logged last behind ``RESULT_MARKER``. The exit
status is 0 when every test passed, 1 when one failed, 2 for an invalid payload and 130 when
the job was canceled. To get the files back, the server adds
``"artifact_paths": ["browser-results.json", "artifacts/**/*"]`` to the payload: the agent
uploads them after the executor returns.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.agent.executors import JobContext, JobOutcome, executor
from bastion.browser.runner import RunResult, StepResult
from bastion.browser.runner.job_mailbox import JobMailbox
from bastion.browser.runner.session import BrowserSession, RunOptions
from bastion.browser.spec import BrowserTest, ModuleNotFound, SpecError, load_test

RESULT_MARKER = "[bastion-browser-result] "
CANCEL_POLL_S = 0.5
MAX_CONCURRENCY = 8


@dataclass(frozen=True)
class BrowserJob:
    tests: tuple[BrowserTest, ...]
    modules: Mapping[str, BrowserTest]
    base_url: str
    variables: Mapping[str, str]
    environment: Mapping[str, str]
    secrets: Mapping[str, str]
    concurrency: int
    video: bool
    screenshot_every_step: bool
    # One per test: the unique part of its email addresses, chosen by the server.
    run_ids: tuple[str, ...] = ()
    mail_domain: str | None = None


def _strings(payload: Mapping[str, Any], key: str) -> dict[str, str]:
    value = payload.get(key) or {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"payload {key} must map names to strings")
    return {str(k): v for k, v in value.items()}


def parse_payload(payload: Mapping[str, Any], env: Mapping[str, str]) -> BrowserJob:
    """Validate a job payload; raise ValueError (with the test and step at fault)."""
    raw_tests = payload.get("tests")
    if not isinstance(raw_tests, list) or not raw_tests:
        raise ValueError("payload tests must be a non-empty list")
    raw_modules = payload.get("modules") or {}
    if not isinstance(raw_modules, Mapping):
        raise ValueError("payload modules must map names to tests")
    try:
        tests = tuple(load_test(test) for test in raw_tests)
        modules = {
            str(name): load_test(test, default_name=str(name)) for name, test in raw_modules.items()
        }
    except SpecError as exc:
        raise ValueError(f"invalid test: {exc}") from exc
    secret_names = payload.get("secret_env") or []
    if not isinstance(secret_names, list):
        raise ValueError("payload secret_env must be a list of names")
    missing = [name for name in secret_names if name not in env]
    if missing:
        raise ValueError(f"secrets missing from the job environment: {', '.join(missing)}")
    run_ids = payload.get("run_ids") or []
    if not isinstance(run_ids, list) or not all(isinstance(r, str) and r for r in run_ids):
        raise ValueError("payload run_ids must be a list of strings")
    if run_ids and len(run_ids) != len(tests):
        raise ValueError("payload run_ids must name one run id per test")
    concurrency = payload.get("concurrency", 1)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"payload concurrency must be 1..{MAX_CONCURRENCY}")
    return BrowserJob(
        tests=tests,
        modules=modules,
        base_url=str(payload.get("base_url") or ""),
        variables=_strings(payload, "variables"),
        environment=_strings(payload, "environment"),
        secrets={name: env[name] for name in secret_names},
        concurrency=concurrency,
        video=bool(payload.get("video", True)),
        screenshot_every_step=bool(payload.get("screenshot_every_step", False)),
        run_ids=tuple(run_ids),
        mail_domain=str(payload.get("mail_domain") or "") or None,
    )


def _resolver(modules: Mapping[str, BrowserTest]) -> Any:
    def resolve(name: str) -> BrowserTest:
        if name not in modules:
            raise ModuleNotFound(f"module {name!r} is not in the job")
        return modules[name]

    return resolve


async def _run(
    ctx: JobContext, job: BrowserJob, artifacts: Path
) -> tuple[list[RunResult], str | None]:
    cancel = asyncio.Event()
    reason: list[str] = []

    def log_step(test: str) -> Any:
        def show(step: StepResult) -> None:
            detail = f": {step.error}" if step.error else ""
            ctx.log(
                f"[step] {test} {step.index} {step.name or step.action} {step.status}{detail}\n"
            )

        return show

    async def watch() -> None:
        while not cancel.is_set():
            why = await asyncio.to_thread(ctx.cancel_requested)
            if why:
                reason.append(why)
                cancel.set()
                return
            await asyncio.sleep(CANCEL_POLL_S)

    results: list[RunResult] = []
    mailbox = JobMailbox.from_env(ctx.env)
    async with BrowserSession(video=job.video) as session:
        gate = asyncio.Semaphore(job.concurrency)

        async def one(position: int, test: BrowserTest) -> RunResult:
            async with gate:
                ctx.log(f"[test] {test.name}\n")
                options = RunOptions(
                    base_url=job.base_url,
                    artifacts_dir=artifacts / f"{position:03d}",
                    record_video=job.video,
                    screenshot_every_step=job.screenshot_every_step,
                    suite_variables=job.variables,
                    environment_variables=job.environment,
                    secrets=job.secrets,
                    modules=_resolver(job.modules),
                    max_run_s=float(ctx.timeout_s) if ctx.timeout_s else 900.0,
                    on_step=log_step(test.name),
                    mailbox=mailbox,
                    mail_domain=job.mail_domain,
                    run_id=job.run_ids[position - 1] if job.run_ids else None,
                )
                result = await session.run(test, options)
                ctx.log(
                    f"[test] {test.name} {result.status.upper()} in {result.duration_ms / 1000:.1f} s\n"
                )
                return result

        runs = asyncio.gather(*(one(i, t) for i, t in enumerate(job.tests, start=1)))
        watcher = asyncio.create_task(watch())
        stopper = asyncio.create_task(cancel.wait())
        pending: set[asyncio.Future[Any]] = {runs, stopper}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if runs.done():
            results = list(runs.result())
        else:
            runs.cancel()
            await asyncio.gather(runs, return_exceptions=True)
        for task in (watcher, stopper):
            task.cancel()
        await asyncio.gather(watcher, stopper, return_exceptions=True)
    return results, (reason[0] if reason else None)


@executor("browser")
def run_browser_job(ctx: JobContext) -> JobOutcome:
    try:
        # Secrets arrive in the payload's env (decrypted by the server for this agent only).
        extra = ctx.payload.get("env")
        env = {**ctx.env, **(extra if isinstance(extra, dict) else {})}
        job = parse_payload(ctx.payload, env)
    except ValueError as exc:
        ctx.log(f"[browser] invalid job payload: {exc}\n")
        return JobOutcome(exit_status=2)
    ctx.log(f"[browser] {len(job.tests)} test(s), concurrency {job.concurrency}\n")
    artifacts = ctx.workdir / "artifacts"
    results, canceled = asyncio.run(_run(ctx, job, artifacts))
    document = [result.to_dict() for result in results]
    (ctx.workdir / "browser-results.json").write_text(json.dumps(document), encoding="utf-8")
    if canceled:
        ctx.log(f"[browser] stopped: {canceled}\n")
        return JobOutcome(exit_status=130, signal_reason=canceled)
    ctx.log(RESULT_MARKER + json.dumps(document, separators=(",", ":")) + "\n")
    return JobOutcome(exit_status=0 if all(r.passed for r in results) else 1)
