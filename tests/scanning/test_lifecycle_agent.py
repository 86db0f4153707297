"""The findings lifecycle end to end: a real agent process runs every scan against a lab whose
reflected-input vulnerability is switched off and on between scans; then a retest of the one
finding, also on the agent, fixes it."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from bastion.agent import executors
from bastion.core.models import AuditEvent, Project
from bastion.scanning import lifecycle, services, signals
from bastion.scanning.models import Finding, FindingState, Scan, ScanState, Target
from tests.agent.conftest import Agents, wait_for
from tests.jobs.helpers import World
from tests.labs.server import serve
from tests.labs.switchable import SwitchableLab

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "scan" not in getattr(executors, "KIND_MODULES", {}),
        reason="the agent does not load the scan executor by kind yet (bastion.agent.executors)",
    ),
]


def _done(scan: Scan) -> bool:
    """Also runs the scheduler's sweep (no scheduler runs here) in case the post-finish hook
    lost a race for the in-memory SQLite database, whose shared cache locks whole tables."""
    # The live server shares the test's in-memory SQLite connection, so a scan can look finished
    # while its report is still being stored: wait for the last row that storing writes.
    last = "finding.retest_result" if scan.retest_of_id else "scan.finish"
    target_id = str(scan.retest_of_id or scan.pk)
    try:
        signals.sweep()
        return Scan.objects.filter(
            pk=scan.pk, state=ScanState.FINISHED
        ).exists() and AuditEvent.objects.filter(action=last, object_id=target_id).count() >= (
            Scan.objects.filter(retest_of_id=scan.retest_of_id).count() if scan.retest_of_id else 1
        )
    except OperationalError:
        return False


def _finished(scan: Scan) -> Scan:
    wait_for(lambda: _done(scan), timeout=90, step=0.2)
    scan.refresh_from_db()
    return scan


def _xss(target: Target) -> Finding:
    return target.findings.get(type="reflected-xss", parameter="q")


def test_lifecycle_and_retest_on_a_real_agent(agents: Agents) -> None:
    world = World()
    project = Project.objects.create(organization=world.org, slug="shop", name="Shop")
    lab = SwitchableLab()
    with serve(lab) as base:
        target = services.create_target(world.principal, project, name="lab", base_url=base)
        services.verify_target(world.principal, target)
        agents.start(world.token)

        def scan() -> Scan:
            return _finished(services.start_scan(world.principal, target, world.cluster))

        first = scan()
        assert _xss(target).state == FindingState.NEW
        assert target.findings.count() > 10

        lab.reflects = False
        scan()
        assert _xss(target).state == FindingState.FIXED
        assert list(target.findings.filter(state=FindingState.FIXED)) == [_xss(target)]

        lab.reflects = True
        scan()
        xss = _xss(target)
        assert xss.state == FindingState.REOPENED and xss.first_seen_scan == first

        lab.reflects = False
        before = dict(target.findings.exclude(pk=xss.pk).values_list("pk", "state"))
        retest = _finished(lifecycle.start_retest(world.principal, xss, world.cluster))
        assert [c["name"] for c in retest.checks] == ["reflected-input"]
        assert retest.requests_sent < first.requests_sent
        xss.refresh_from_db()
        assert xss.state == FindingState.FIXED
        assert xss.comments.filter(author_label="retest", body__contains="fixed").exists()
        # Only the retested check ran: every other finding stays as it was.
        assert dict(target.findings.exclude(pk=xss.pk).values_list("pk", "state")) == before
    assert AuditEvent.objects.filter(action="finding.retest_result", object_id=str(xss.pk)).exists()
