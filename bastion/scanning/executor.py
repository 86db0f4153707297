"""The agent's ``scan`` executor: run the engine on the job's payload (``services.scan_payload``),
stream progress and findings to the job log, stop within a second of a cancel request, and
leave the JSON report (``engine.report.to_json``) in the job's working directory as
``scan-result.json`` and as the log's last line, prefixed with ``RESULT_MARKER``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bastion.agent.executors import JobContext, JobOutcome, executor
from bastion.scanning.engine.context import ScanOptions
from bastion.scanning.engine.policy import LOOPBACK_DEFAULT
from bastion.scanning.engine.report import RESULT_MARKER, to_json
from bastion.scanning.engine.runner import Progress, ScanResult, run_scan

CANCEL_POLL_S = 0.5


def options_from_payload(payload: dict[str, Any]) -> ScanOptions:
    def strings(key: str) -> tuple[str, ...]:
        value = payload.get(key) or []
        if not isinstance(value, list):
            raise ValueError(f"payload {key} must be a list")
        return tuple(str(v) for v in value)

    target = payload.get("target")
    if not isinstance(target, str):
        raise ValueError("payload target must be a URL string")
    rate = payload.get("rate_per_s")
    concurrency = payload.get("concurrency")
    focus_url, focus_parameter = payload.get("focus_url"), payload.get("focus_parameter")
    if not isinstance(focus_url, str | None) or not isinstance(focus_parameter, str | None):
        raise ValueError("payload focus_url and focus_parameter must be strings")
    return ScanOptions(
        target=target,
        profile=str(payload.get("profile") or "lightning"),
        include=strings("include"),
        exclude=strings("exclude"),
        extra_hosts=strings("extra_hosts"),
        allow_hosts=strings("allow_hosts") if "allow_hosts" in payload else LOOPBACK_DEFAULT,
        rate_per_s=float(rate) if rate else None,
        concurrency=int(concurrency) if concurrency else None,
        checks=strings("checks"),  # a retest runs one check
        focus_url=focus_url or None,
        focus_parameter=focus_parameter or None,
    )


async def _scan_until_canceled(
    ctx: JobContext, options: ScanOptions
) -> tuple[ScanResult, str | None]:
    cancel = asyncio.Event()
    reason: list[str] = []
    last = [-1]

    def progress(p: Progress) -> None:
        if p.checks_done != last[0]:
            last[0] = p.checks_done
            ctx.log(
                f"[scan] checks {p.checks_done}/{p.checks_total}, "
                f"{p.requests_sent} requests, {p.findings} findings\n"
            )

    async def watch() -> None:
        while not cancel.is_set():
            why = await asyncio.to_thread(ctx.cancel_requested)
            if why:
                reason.append(why)
                cancel.set()
                return
            await asyncio.sleep(CANCEL_POLL_S)

    watcher = asyncio.create_task(watch())
    try:
        result = await run_scan(options, on_progress=progress, cancel=cancel)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return result, (reason[0] if reason else None)


@executor("scan")
def run_scan_job(ctx: JobContext) -> JobOutcome:
    try:
        options = options_from_payload(ctx.payload)
    except ValueError as exc:
        ctx.log(f"[scan] invalid job payload: {exc}\n")
        return JobOutcome(exit_status=2)
    ctx.log(f"[scan] {options.profile} scan of {options.target}\n")
    result, canceled = asyncio.run(_scan_until_canceled(ctx, options))
    for finding in sorted(result.findings, key=lambda f: (-f.severity, f.type)):
        param = f" [{finding.parameter}]" if finding.parameter else ""
        ctx.log(f"[finding] {finding.severity.label} {finding.type} {finding.url}{param}\n")
    for outcome in result.outcomes:
        if outcome.status != "ok":
            ctx.log(f"[check] {outcome.name}: {outcome.status}: {outcome.message}\n")
    report = to_json(result)
    (ctx.workdir / "scan-result.json").write_text(json.dumps(report), encoding="utf-8")
    ctx.log(RESULT_MARKER + json.dumps(report, separators=(",", ":")) + "\n")
    if canceled:
        return JobOutcome(exit_status=130, signal_reason=canceled)
    if result.error:
        ctx.log(f"[scan] refused: {result.error}\n")
        return JobOutcome(exit_status=2)
    return JobOutcome(exit_status=0)
