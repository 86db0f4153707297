"""Whole lightning scans of targets that misbehave at the base URL itself: slow-drip, TLS
failure, redirect loop, huge binary page, garbage instead of HTTP, closed port. Each scan
completes within its time budget, no check crashes, and every check that could not do its work
says why in its outcome — which the stored scan and its report then show."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from bastion.core.access import Principal
from bastion.scanning import services
from bastion.scanning.engine.report import to_json
from bastion.scanning.engine.runner import ScanResult
from bastion.scanning.models import Scan, ScanState, Target
from bastion.scanning.reports import data, formats
from tests.factories import make_org, make_project, make_user
from tests.labs.raw import closed_port, garbage, serve_raw, slow_drip
from tests.labs.server import LabRequest, LabResponse, serve
from tests.scanning.conftest import run

BUDGET_S = 6.0
HUGE = 5_000_000
# What a check that could not reach the target names in its outcome.
CLEAR = (
    "TargetTimeout",
    "TargetUnreachable",
    "TargetTLSError",
    "TooManyRedirects",
    "TimeBudgetExhausted",
    "RequestBudgetExhausted",
    "time budget",
)


def loop_at_base(request: LabRequest) -> LabResponse:
    other = "/b" if request.path != "/b" else "/"
    return LabResponse(302, b"", None, [("Location", other)])


def huge_binary(request: LabRequest) -> LabResponse:
    return LabResponse(200, os.urandom(1000) * (HUGE // 1000), "text/html; charset=utf-8")


def malformed(request: LabRequest) -> LabResponse:
    body = b"<html><head><title>x</head><body><a href='/?q=1'><form action=><input name=q"
    return LabResponse(200, body + b"\xff\xfe<\x00>" * 2000 + b"<script>var s='</div" * 200)


@contextlib.contextmanager
def _plain_as_https() -> Iterator[str]:
    """https:// to a plain-HTTP server: every TLS handshake fails."""
    with serve(malformed) as base:
        yield base.replace("http://", "https://")


TARGETS: dict[str, Callable[[], AbstractContextManager[str]]] = {
    "slow-drip": lambda: serve_raw(slow_drip),
    "garbage": lambda: serve_raw(garbage),
    "closed-port": closed_port,
    "tls-failure": _plain_as_https,
    "redirect-loop": lambda: serve(loop_at_base),
    "huge-binary": lambda: serve(huge_binary),
    "malformed-html": lambda: serve(malformed),
}


def _scan(kind: str) -> ScanResult:
    with TARGETS[kind]() as base:
        return run(base, time_budget_s=BUDGET_S)


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_the_scan_completes_and_failing_checks_say_why(kind: str) -> None:
    result = _scan(kind)
    assert result.error is None, result.error
    assert result.outcomes, "every check of the profile has an outcome"
    assert [o.name for o in result.outcomes if o.status == "crashed"] == []
    for outcome in result.outcomes:
        if outcome.status != "ok":
            assert outcome.status in {"error", "timeout", "cancelled"}, outcome
            assert any(name in outcome.message for name in CLEAR), outcome
    failed = {o.status for o in result.outcomes} - {"ok"}
    if kind in {"slow-drip", "garbage", "closed-port", "tls-failure", "redirect-loop"}:
        assert failed, f"{kind}: the checks that fetch the base URL must report an error"


@pytest.mark.django_db
def test_the_stored_scan_and_its_report_show_each_check_error() -> None:
    owner = make_user()
    project = make_project(make_org(owner, slug="acme"))
    result = _scan("slow-drip")
    target = Target.objects.create(project=project, name="drip", base_url=result.target)
    scan = Scan.objects.create(target=target, state=ScanState.RUNNING)
    services.record_scan_result(Principal.of_user(owner).actor, scan, to_json(result))
    scan.refresh_from_db()
    assert scan.state == ScanState.FINISHED

    document = formats.to_json(data.collect(target, scan))
    checks = {c["name"]: c for c in document["scan"]["checks"]}
    assert checks.keys() == {o.name for o in result.outcomes}
    assert any("TargetTimeout" in c["message"] for c in checks.values())
    sarif = formats.to_sarif(data.collect(target, scan))
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == sum(1 for o in result.outcomes if o.status != "ok")
    assert json.dumps(sarif)  # serializable as is
