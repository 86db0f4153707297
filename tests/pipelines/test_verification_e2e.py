"""Verification steps end to end: real ``bastion agent start`` processes run the scan of the
vulnerable lab and a browser suite against the browser lab; the build follows them, attaches
their reports, and passes or fails by their results; the build page links them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError

from bastion.agent import executors
from bastion.errors.models import Deploy
from bastion.jobs.models import Artifact
from bastion.pipelines import scheduler, services
from bastion.pipelines.models import Build, BuildState, StepState, StepVerification
from bastion.scanning.models import ScanState
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.labs.browser_site.server import LabServer
from tests.pipelines.helpers import make_pipeline, steps
from tests.pipelines.verification_world import GATE, SOFT, verification_world
from tests.scanning.conftest import vulnerable_lab  # noqa: F401 - fixture
from tests.web.conftest import login_client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not {"scan", "browser"} <= set(getattr(executors, "KIND_MODULES", {})),
        reason="the agent does not load the scan and browser executors",
    ),
]


@pytest.fixture(scope="module")
def lab() -> Any:
    with LabServer() as server:
        yield server


def _finished(build: Build) -> Build | None:
    """Also sweeps, as the scheduler process would (none runs here), in case a post-commit hook
    lost a race for the in-memory SQLite database, whose shared cache locks whole tables."""
    try:
        scheduler.sweep()
        build.refresh_from_db()
    except OperationalError:
        return None
    return build if build.is_finished else None


def test_findings_at_fail_on_fail_the_build_and_soft_fail_lets_it_pass(
    agents: Agents,  # noqa: F811
    vulnerable_lab: str,  # noqa: F811
    lab: LabServer,
) -> None:
    world = verification_world(vulnerable_lab, lab)
    agents.start(world.token)
    agents.start(world.token)
    gate = services.create_build(world.principal, make_pipeline(world, GATE, slug="gate"))
    done = wait_for(lambda: _finished(gate), timeout=180, step=0.2)
    assert done.state == BuildState.FAILED and steps(done) == {"scan": StepState.FAILED}
    found = StepVerification.objects.select_related("scan").get(step__build=gate)
    assert found.scan is not None and found.scan.state == ScanState.FINISHED
    high = found.summary["findings"]["high"] + found.summary["findings"]["critical"]
    assert high > 0 and found.summary["gating"] == high
    assert found.outcome == f"{high} finding(s) at or above high"
    paths = set(Artifact.objects.filter(job=found.scan.job).values_list("path", flat=True))
    assert {"scan-result.json", "scan-report.sarif"} <= paths
    assert found.summary["reports"] == ["scan-report.sarif", "scan-result.json"]

    pipeline = make_pipeline(world, SOFT, slug="soft")
    soft = services.create_build(world.principal, pipeline, commit="feed42")
    done = wait_for(lambda: _finished(soft), timeout=240, step=0.2)
    assert steps(done) == {
        "scan": StepState.SOFT_FAILED,
        "smoke": StepState.PASSED,
        "step-3": StepState.PASSED,
        "release": StepState.PASSED,
    }
    assert done.state == BuildState.PASSED
    smoke = StepVerification.objects.select_related("browser_run").get(
        step__build=soft, step__key="smoke"
    )
    assert smoke.summary["passed"] == 1 and smoke.summary["failed"] == 0
    run = smoke.browser_run
    assert run is not None and run.status == "passed"
    browser_paths = set(
        Artifact.objects.filter(job__build_job__step__build=soft, job__kind="browser").values_list(
            "path", flat=True
        )
    )
    assert "junit.xml" in browser_paths and any(p.endswith(".png") for p in browser_paths)
    deploy = Deploy.objects.get(project__slug="shop")
    assert (deploy.release, deploy.environment) == ("feed42", "production")

    soft_found = StepVerification.objects.get(step__build=soft, step__key="scan")
    soft_scan = soft_found.scan
    assert soft_scan is not None and soft_found.summary["gating"] > 0
    client = login_client(world.owner)
    page = client.get(f"/o/{world.org.slug}/pipelines/soft/builds/{soft.number}/")
    body = page.content.decode()
    assert page.status_code == 200
    assert f"/o/{world.org.slug}/scanning/scans/{soft_scan.pk}/" in body
    assert f"{soft_found.summary['findings']['high']} high" in body
    assert f"/o/{world.org.slug}/browser/shop/runs/{run.pk}/" in body and "1 passed" in body
    assert "release feed42 to production" in body and "scan-report.sarif" in body
