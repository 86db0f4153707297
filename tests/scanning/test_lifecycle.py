"""Findings across scans: new → open → fixed only when a later scan covered them (the check
ran cleanly on that URL) → reopened when found again; and the retest of one finding."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs.models import Cluster
from bastion.scanning import lifecycle, services
from bastion.scanning.engine.findings import coverage_key
from bastion.scanning.engine.report import to_json
from bastion.scanning.engine.runner import scan as run_options
from bastion.scanning.executor import options_from_payload
from bastion.scanning.models import Finding, FindingSource, FindingState, Scan, Target
from tests.jobs.helpers import World
from tests.labs.server import serve
from tests.labs.switchable import SwitchableLab
from tests.scanning.conftest import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_setup() -> tuple[Principal, Any]:
    world = World()
    project = services.Project.objects.create(organization=world.org, slug="shop", name="Shop")
    return world.principal, project


CHECKS = ("reflected-input", "security-headers")


def _record(principal: Principal, target: Target, base: str, **options: Any) -> dict[str, Any]:
    report = to_json(run(base, checks=CHECKS, **options))
    scan = Scan.objects.create(target=target)
    services.record_scan_result(principal.actor, scan, report)
    return report


def _xss(target: Target) -> Finding:
    return target.findings.get(type="reflected-xss", parameter="q")


def test_every_reported_finding_is_covered_by_its_check(vulnerable_lab: str) -> None:
    report = to_json(run(vulnerable_lab))
    assert report["findings"]
    for finding in report["findings"]:
        assert coverage_key(finding["url"]) in report["coverage"][finding["check"]], finding


def test_fixed_only_when_the_later_scan_covered_the_url(
    owner_setup: tuple[Principal, Any],
) -> None:
    principal, project = owner_setup
    lab = SwitchableLab()
    with serve(lab) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        _record(principal, target, base)
        assert _xss(target).state == FindingState.NEW
        headers_finding = target.findings.exclude(type="reflected-xss").first()
        assert headers_finding is not None

        # The link to /search is gone: the check ran cleanly but never reached the page.
        lab.linked = False
        report = _record(principal, target, base)
        assert coverage_key(base + "search") not in report["coverage"].get("reflected-input", [])
        assert _xss(target).state == FindingState.NEW  # not seen, not covered: unchanged

        # A scan that did not run the check proves nothing either.
        lab.linked, lab.reflects = True, False
        scan = Scan.objects.create(target=target)
        partial = services.record_scan_result(
            principal.actor, scan, to_json(run(base, checks=("security-headers",)))
        )
        assert partial.fixed == 0 and _xss(target).state == FindingState.NEW

        # The page is reached and the input is now escaped: fixed.
        _record(principal, target, base)
        xss = _xss(target)
        assert xss.state == FindingState.FIXED and xss.fixed_at is not None
        headers_finding.refresh_from_db()
        assert headers_finding.state == FindingState.OPEN  # seen in every scan

        lab.reflects = True
        _record(principal, target, base)
        xss = _xss(target)
        assert xss.state == FindingState.REOPENED and xss.fixed_at is None


def test_a_report_without_coverage_fixes_nothing(owner_setup: tuple[Principal, Any]) -> None:
    principal, project = owner_setup
    lab = SwitchableLab()
    with serve(lab) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        _record(principal, target, base)
        lab.reflects = False
        report = to_json(run(base, checks=CHECKS))
    del report["coverage"]  # an agent on an engine from before coverage
    result = services.record_scan_result(
        principal.actor, Scan.objects.create(target=target), report
    )
    assert result.fixed == 0 and _xss(target).state == FindingState.NEW


def test_retest_payload_is_restricted_to_the_check_url_and_parameter(
    owner_setup: tuple[Principal, Any],
) -> None:
    principal, project = owner_setup
    cluster = Cluster.objects.get(organization=project.organization)
    with serve(SwitchableLab()) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        services.verify_target(principal, target)
        _record(principal, target, base)
    finding = _xss(target)
    scan = lifecycle.start_retest(principal, finding, cluster)
    assert scan.retest_of == finding and scan.job is not None
    payload = scan.job.payload
    assert payload["checks"] == ["reflected-input"]
    assert payload["focus_url"] == base + "search?q=%2F" and payload["focus_parameter"] == "q"
    assert AuditEvent.objects.filter(action="finding.retest", object_id=str(finding.pk)).exists()

    manual = Finding.objects.create(
        target=target,
        fingerprint="manual:v1:x",
        type="manual",
        title="IDOR",
        severity="high",
        url=base,
        source=FindingSource.MANUAL,
    )
    with pytest.raises(ValidationError):
        lifecycle.start_retest(principal, manual, cluster)


def test_retest_outcomes_are_noted_on_the_finding(owner_setup: tuple[Principal, Any]) -> None:
    principal, project = owner_setup
    cluster = Cluster.objects.get(organization=project.organization)
    lab = SwitchableLab()
    with serve(lab) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        services.verify_target(principal, target)
        _record(principal, target, base)
        finding = _xss(target)
        outcomes = []
        for reflects in (True, False):
            lab.reflects = reflects
            retest = lifecycle.start_retest(principal, finding, cluster)
            assert retest.job is not None
            result = run_options(options_from_payload(retest.job.payload))
            assert {o.name for o in result.outcomes} == {"reflected-input"}
            services.record_scan_result(principal.actor, retest, to_json(result))
            finding.refresh_from_db()
            outcomes.append(finding.state)
    assert outcomes == [FindingState.OPEN, FindingState.FIXED]
    notes = list(finding.comments.values_list("body", flat=True))
    assert "still-open" in notes[0] and "fixed" in notes[1]
    assert AuditEvent.objects.filter(action="finding.retest_result").count() == 2
