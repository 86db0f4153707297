"""Run one scan: pre-flight the target, run the profile's checks with bounds, collect findings."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from bastion.scanning.engine.checks import Check, checks_for_profile
from bastion.scanning.engine.context import (
    CURRENT_CHECK,
    Explorer,
    FocusExplorer,
    ScanContext,
    ScanOptions,
)
from bastion.scanning.engine.errors import EngineError, PolicyViolation
from bastion.scanning.engine.findings import Finding
from bastion.scanning.engine.http import HttpClient
from bastion.scanning.engine.policy import AddressPolicy, Scope
from bastion.scanning.engine.profiles import Profile, get_profile

log = logging.getLogger(__name__)
OutcomeStatus = Literal["ok", "error", "timeout", "crashed", "cancelled"]


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    status: OutcomeStatus
    message: str
    duration_s: float


@dataclass(frozen=True)
class Progress:
    checks_total: int
    checks_done: int
    requests_sent: int
    findings: int


@dataclass(frozen=True)
class ScanResult:
    target: str
    profile: str
    started_at: datetime
    duration_s: float
    requests_sent: int
    findings: tuple[Finding, ...]
    outcomes: tuple[CheckOutcome, ...]
    error: str | None = None  # the scan could not start (bad URL, refused address)
    # check name -> coverage keys of the URLs it examined (``findings.coverage_key``)
    coverage: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


class ScanRefused(EngineError):
    """The target itself is not allowed or not a valid URL."""


def _validate_target(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ScanRefused(f"{url!r} is not an http(s) URL with a host")


async def _run_check(
    check: Check, ctx: ScanContext, budget_s: float, semaphore: asyncio.Semaphore
) -> CheckOutcome:
    async with semaphore:
        CURRENT_CHECK.set(check.name)  # this task's context only: coverage goes to this check
        started = time.monotonic()
        status: OutcomeStatus = "ok"
        message = ""
        try:
            async with asyncio.timeout(budget_s):
                await check.run(ctx)
        except TimeoutError:
            status, message = "timeout", f"did not finish within {budget_s:.0f}s"
        except EngineError as exc:
            status, message = "error", f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            status, message = "cancelled", "scan cancelled or out of time"
            raise
        except Exception as exc:  # a crashing check must not end the scan
            log.exception("check %s crashed on %s", check.name, ctx.target)
            status, message = "crashed", f"{type(exc).__name__}: {exc}"
        return CheckOutcome(check.name, status, message, time.monotonic() - started)


def _select_checks(profile: Profile, only: tuple[str, ...]) -> list[Check]:
    classes = checks_for_profile(profile.name)
    if only:
        unknown = set(only) - {c.name for c in classes}
        if unknown:
            raise ValueError(f"checks not in profile {profile.name}: {', '.join(sorted(unknown))}")
        classes = [c for c in classes if c.name in only]
    return [cls() for cls in classes]


async def run_scan(
    options: ScanOptions,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: asyncio.Event | None = None,
) -> ScanResult:
    """Run ``options.profile`` against ``options.target``. Never raises for target trouble."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    profile = get_profile(options.profile)
    checks = _select_checks(profile, options.checks)
    policy = AddressPolicy.from_allow_list(
        options.allow_hosts, allow_private=options.allow_private, resolver=options.resolver
    )
    scope = Scope.for_target(
        options.target,
        include=options.include,
        exclude=options.exclude,
        extra_hosts=options.extra_hosts,
    )
    limits = profile.limits
    if options.rate_per_s is not None:
        limits = dataclasses.replace(limits, rate_per_s=options.rate_per_s)
    if options.concurrency is not None:
        limits = dataclasses.replace(limits, concurrency=options.concurrency)
    budget = options.time_budget_s or profile.time_budget_s

    def result(
        ctx: ScanContext | None,
        outcomes: list[CheckOutcome],
        error: str | None = None,
        requests: int = 0,
    ) -> ScanResult:
        findings = tuple(ctx.findings) if ctx else ()
        coverage = {k: tuple(sorted(v)) for k, v in sorted(ctx.coverage.items())} if ctx else {}
        return ScanResult(
            options.target,
            profile.name,
            started_at,
            time.monotonic() - started,
            requests,
            findings,
            tuple(outcomes),
            error,
            coverage,
        )

    try:
        _validate_target(options.target)
        host = urlsplit(options.target).hostname or ""
        await policy.resolve(host, urlsplit(options.target).port or 443)
        scope.require(options.target)
        if options.focus_url:
            scope.require(options.focus_url)
    except (ScanRefused, PolicyViolation, EngineError) as exc:
        return result(None, [], f"{type(exc).__name__}: {exc}")

    done = 0
    ctx_ref: list[ScanContext] = []

    def progress(_: object = None) -> None:
        if on_progress and ctx_ref:
            on_progress(
                Progress(len(checks), done, ctx_ref[0].http.requests_sent, len(ctx_ref[0].findings))
            )

    async with HttpClient(
        policy, scope, limits, deadline=started + budget, on_request=progress
    ) as http:
        explorer: Explorer = (
            FocusExplorer(options.focus_url) if options.focus_url else profile.explorer()
        )
        ctx = ScanContext(options, http, explorer, on_finding=progress)
        ctx_ref.append(ctx)
        progress()
        semaphore = asyncio.Semaphore(profile.check_concurrency)
        tasks = {
            asyncio.create_task(_run_check(c, ctx, profile.check_time_budget_s, semaphore)): c
            for c in checks
        }
        outcomes: dict[str, CheckOutcome] = {}
        pending: set[asyncio.Task[CheckOutcome]] = set(tasks)
        cancel_wait = asyncio.create_task(cancel.wait()) if cancel else None
        try:
            async with asyncio.timeout(budget + 5):
                while pending:
                    waiting: set[asyncio.Future[object]] = set(pending)  # type: ignore[arg-type]
                    if cancel_wait:
                        waiting.add(cancel_wait)  # type: ignore[arg-type]
                    finished, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if cancel_wait in finished:
                        break
                    for future in finished:
                        assert isinstance(future, asyncio.Task)
                        pending.discard(future)
                        outcome = future.result()
                        outcomes[outcome.name] = outcome
                        done += 1
                        progress()
        except TimeoutError:
            pass
        finally:
            if cancel_wait:
                cancel_wait.cancel()
            for left in pending:
                left.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await ctx.close()
        for check in tasks.values():
            if check.name not in outcomes:
                reason = "cancelled" if cancel and cancel.is_set() else "scan time budget spent"
                outcomes[check.name] = CheckOutcome(check.name, "cancelled", reason, 0.0)
        ordered = [outcomes[c.name] for c in checks]
        return result(ctx, ordered, None, http.requests_sent)


def scan(options: ScanOptions, **kwargs: object) -> ScanResult:
    """Synchronous wrapper for callers without an event loop (CLI, agent)."""
    return asyncio.run(run_scan(options, **kwargs))  # type: ignore[arg-type]
