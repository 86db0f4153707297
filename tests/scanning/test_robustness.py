"""Bad targets and misbehaving checks: the scan completes, errors are clear, nothing hangs."""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

import pytest

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import LinkExplorer, ScanContext, ScanOptions
from bastion.scanning.engine.errors import (
    RequestBudgetExhausted,
    TargetTimeout,
    TargetTLSError,
    TargetUnreachable,
    TooManyRedirects,
)
from bastion.scanning.engine.http import HttpClient, HttpLimits
from bastion.scanning.engine.policy import AddressPolicy, Scope
from bastion.scanning.engine.runner import _run_check, run_scan
from tests.labs.raw import closed_port, garbage, serve_raw, slow_drip
from tests.labs.server import LabRequest, LabResponse, serve
from tests.scanning.conftest import run

HUGE = 5_000_000


def misbehaving(request: LabRequest) -> LabResponse:
    if request.path in {"/loop-a", "/loop-b"}:
        other = "/loop-b" if request.path == "/loop-a" else "/loop-a"
        return LabResponse(302, b"", None, [("Location", other)])
    if request.path == "/huge":
        return LabResponse(200, b"x" * HUGE, "text/plain")
    if request.path == "/binary":
        return LabResponse(200, os.urandom(50_000), "text/html")
    # Malformed HTML: unterminated tags, a stray script, broken attributes.
    return LabResponse(
        200, '<html><a href="/loop-a">x<a href=/binary><script>var a="<b' + "<div " * 500
    )


def client(base: str, **limits: object) -> HttpClient:
    return HttpClient(AddressPolicy.from_allow_list(), Scope.for_target(base), HttpLimits(**limits))  # type: ignore[arg-type]


def test_http_layer_translates_failures() -> None:
    async def scenario(base: str) -> None:
        async with client(base, max_body_bytes=1000, max_requests=50) as http:
            with pytest.raises(TooManyRedirects):
                await http.get(base + "loop-a", follow_redirects=True)
            huge = await http.get(base + "huge")
            assert huge.truncated and len(huge.body) == 1000

    with serve(misbehaving) as base:
        asyncio.run(scenario(base))


def test_unreachable_garbage_and_slow_drip() -> None:
    async def expect(base: str, error: type[Exception]) -> None:
        async with client(base, request_total_s=5.0, read_timeout_s=5.0) as http:
            with pytest.raises(error):
                await http.get(base)

    with closed_port() as base:
        asyncio.run(expect(base, TargetUnreachable))
    with serve_raw(garbage) as base:
        asyncio.run(expect(base, TargetUnreachable))
    with serve_raw(slow_drip) as base:
        asyncio.run(expect(base, TargetTimeout))
    with serve(misbehaving) as base:  # https:// to a plain-HTTP server: the handshake fails
        asyncio.run(expect(base.replace("http://", "https://"), TargetTLSError))


def test_request_budget_is_enforced() -> None:
    async def scenario(base: str) -> None:
        async with client(base, max_requests=2) as http:
            await http.get(base)
            await http.get(base)
            with pytest.raises(RequestBudgetExhausted):
                await http.get(base)
            assert http.requests_sent == 2

    with serve(misbehaving) as base:
        asyncio.run(scenario(base))


def test_full_scan_of_misbehaving_site_completes() -> None:
    with serve(misbehaving) as base:
        result = run(base)
    assert result.error is None
    assert {o.status for o in result.outcomes} <= {"ok", "error"}
    assert [o for o in result.outcomes if o.status == "crashed"] == []


def test_full_scan_of_unreachable_target_reports_errors_per_check() -> None:
    with closed_port() as base:
        result = run(base)
    errors = [o for o in result.outcomes if o.status == "error"]
    assert errors and all("TargetUnreachable" in o.message for o in errors)
    assert result.findings == ()


class Crashing(Check):
    name = "test-crashing"
    finding_types: ClassVar[tuple[str, ...]] = ()

    async def run(self, ctx: ScanContext) -> None:
        raise ZeroDivisionError("bug in a check")


class Sleepy(Check):
    name = "test-sleepy"

    async def run(self, ctx: ScanContext) -> None:
        await asyncio.sleep(30)


def test_runner_isolates_crashes_and_enforces_check_budget(vulnerable_lab: str) -> None:
    async def scenario() -> list[str]:
        options = ScanOptions(target=vulnerable_lab)
        async with client(vulnerable_lab) as http:
            ctx = ScanContext(options, http, LinkExplorer())
            semaphore = asyncio.Semaphore(2)
            outcomes = await asyncio.gather(
                _run_check(Crashing(), ctx, 5.0, semaphore),
                _run_check(Sleepy(), ctx, 0.2, semaphore),
            )
            await ctx.close()
        return [f"{o.name}:{o.status}:{o.message}" for o in outcomes]

    assert asyncio.run(scenario()) == [
        "test-crashing:crashed:ZeroDivisionError: bug in a check",
        "test-sleepy:timeout:did not finish within 0s",
    ]


def test_cancel_stops_a_scan_stuck_on_a_slow_target() -> None:
    async def scenario(base: str) -> set[str]:
        cancel = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, cancel.set)
        result = await run_scan(ScanOptions(target=base), cancel=cancel)
        return {o.status for o in result.outcomes}

    with serve_raw(slow_drip) as base:
        statuses = asyncio.run(scenario(base))
    assert "cancelled" in statuses
