"""A scan follows its job without anyone asking: the post-commit hook on the job's finish, and
the scheduler's sweep for what the hook missed (bulk updates, a process that died)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bastion.core import scheduler
from bastion.core.models import AuditEvent, Project
from bastion.jobs import artifacts, dispatch
from bastion.jobs.logs import append_log
from bastion.scanning import services, signals
from bastion.scanning.engine.report import RESULT_MARKER, to_json
from bastion.scanning.models import Scan, ScanState
from tests.jobs.helpers import World
from tests.scanning.conftest import run

pytestmark = pytest.mark.django_db

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]


def _scan(world: World, base: str) -> Scan:
    project = Project.objects.create(organization=world.org, slug="shop", name="Shop")
    target = services.create_target(world.principal, project, name="lab", base_url=base)
    services.verify_target(world.principal, target)  # loopback is allow-listed
    return services.start_scan(world.principal, target, world.cluster)


def test_finish_hook_stores_the_uploaded_report(
    vulnerable_lab: str, django_capture_on_commit_callbacks: Capture
) -> None:
    world = World()
    scan = _scan(world, vulnerable_lab)
    assert scan.job is not None
    assert scan.job.payload["artifact_paths"] == ["scan-result.json"]
    agent, _ = world.agent()
    job, _ = world.running(agent)

    assert signals.sweep() == 1  # the job started through a bulk UPDATE: the sweep sees it
    scan.refresh_from_db()
    assert scan.state == ScanState.RUNNING and scan.started_at is not None

    report = to_json(run(vulnerable_lab, checks=("cors", "security-headers")))
    upload = SimpleUploadedFile("scan-result.json", json.dumps(report).encode())
    artifacts.upload_artifact(job, "scan-result.json", upload)
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        dispatch.finish(job, 0)
    assert len(hooks) >= 1
    scan.refresh_from_db()
    assert scan.state == ScanState.FINISHED
    assert scan.target.findings.count() == len(report["findings"]) > 0
    assert scan.requests_sent == report["requests_sent"]
    assert AuditEvent.objects.filter(action="scan.finish", object_id=str(scan.pk)).count() == 1
    assert signals.sweep() == 0  # nothing left behind


def test_sweep_catches_a_finish_the_hook_missed(vulnerable_lab: str) -> None:
    world = World()
    scan = _scan(world, vulnerable_lab)
    agent, _ = world.agent()
    job, _ = world.running(agent)
    report = to_json(run(vulnerable_lab, checks=("cors",)))
    append_log(job, 0, "[scan] checks 1/1, 3 requests, 1 findings\n")
    append_log(job, 1, RESULT_MARKER + json.dumps(report) + "\n")
    dispatch.finish(job, 0)  # outside a capture: the on-commit hook never runs in this test
    scan.refresh_from_db()
    assert scan.state == ScanState.QUEUED

    scheduler.tick()
    scan.refresh_from_db()
    assert scan.state == ScanState.FINISHED
    assert {f.type for f in scan.target.findings.all()} == {f["type"] for f in report["findings"]}
    assert "cors-reflected-origin" in {f.type for f in scan.target.findings.all()}


def test_a_job_canceled_before_it_ran_cancels_the_scan(
    django_capture_on_commit_callbacks: Capture,
) -> None:
    world = World()
    scan = _scan(world, "http://127.0.0.1:9/")
    with django_capture_on_commit_callbacks(execute=True):
        from bastion.scanning import actions

        actions.cancel_scan(world.principal, scan)
    scan.refresh_from_db()
    assert scan.state == ScanState.CANCELED
    with pytest.raises(Exception, match="queued or running"):
        actions.cancel_scan(world.principal, scan)


def test_a_job_that_ends_without_a_report_fails_the_scan() -> None:
    world = World()
    scan = _scan(world, "http://127.0.0.1:9/")
    agent, _ = world.agent()
    job, _ = world.running(agent)
    dispatch.finish(job, 1)
    assert signals.sweep() == 1
    scan.refresh_from_db()
    assert scan.state == ScanState.FAILED and "without a report" in scan.error
