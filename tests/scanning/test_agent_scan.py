"""A scan from the server to a real ``bastion agent start`` process and back: the scan job runs
on the agent, its report comes back, the findings land in the database."""

from __future__ import annotations

import pytest

from bastion.agent import executors
from bastion.core.models import AuditEvent
from bastion.jobs.models import Job
from bastion.scanning import services
from bastion.scanning.models import FindingState, ScanState
from tests.agent.conftest import Agents, wait_for
from tests.jobs.helpers import World
from tests.labs.raw import serve_raw, slow_drip
from tests.scanning.conftest import ground_truth

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "scan" not in getattr(executors, "KIND_MODULES", {}),
        reason="the agent does not load the scan executor by kind yet (bastion.agent.executors)",
    ),
]


def finished(job: Job) -> Job | None:
    job.refresh_from_db()
    return job if job.is_finished else None


def test_scan_job_on_a_real_agent_stores_findings(agents: Agents, vulnerable_lab: str) -> None:
    world = World()
    project = services.Project.objects.create(organization=world.org, slug="shop", name="Shop")
    target = services.create_target(world.principal, project, name="lab", base_url=vulnerable_lab)
    services.verify_target(world.principal, target)  # loopback is allow-listed
    scan = services.start_scan(world.principal, target, world.cluster)
    agents.start(world.token)

    assert scan.job is not None
    wait_for(lambda: finished(scan.job), timeout=60)
    # Nobody syncs by hand: the server's job-finish hook stored the uploaded report.
    # The live server may share the test's in-memory SQLite connection, so the scan can look
    # finished while its report is still being stored: wait for the audit row written last.
    wait_for(
        lambda: AuditEvent.objects.filter(action="scan.finish", object_id=str(scan.pk)).exists()
    )
    scan.refresh_from_db()
    assert scan.state == ScanState.FINISHED
    assert scan.job is not None and scan.job.artifacts.filter(path="scan-result.json").exists()
    found = {
        (
            f.type,
            "/" + f.url[len(vulnerable_lab) :] if f.url.startswith(vulnerable_lab) else f.url,
            f.parameter or None,
        )
        for f in target.findings.all()
    }
    assert found == ground_truth("vulnerable")
    assert set(target.findings.values_list("state", flat=True)) == {FindingState.NEW}


def test_canceled_scan_job_stops_and_the_scan_is_canceled(agents: Agents) -> None:
    from bastion.jobs import dispatch

    world = World()
    project = services.Project.objects.create(organization=world.org, slug="slow", name="Slow")
    with serve_raw(slow_drip) as base:
        target = services.create_target(world.principal, project, name="slow", base_url=base)
        services.verify_target(world.principal, target)
        scan = services.start_scan(world.principal, target, world.cluster)
        agents.start(world.token)
        assert scan.job is not None
        job = scan.job
        wait_for(
            lambda: (
                services.sync_scan_from_job(world.principal.actor, scan).state == ScanState.RUNNING
            )
        )
        dispatch.cancel_job(world.principal, job)
        wait_for(lambda: finished(job), timeout=20)
    scan = services.sync_scan_from_job(world.principal.actor, scan)
    assert scan.state == ScanState.CANCELED
