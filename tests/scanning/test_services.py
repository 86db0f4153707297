"""Targets, verification, scans and findings through the named actions, on the real database."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.jobs import services as job_services
from bastion.jobs.models import Job
from bastion.scanning import access, services
from bastion.scanning.engine.report import to_json
from bastion.scanning.models import FindingState, ScanState, Target, Triage, VerificationMethod
from tests.factories import make_member, make_org, make_project, make_user
from tests.labs import vulnerable
from tests.labs.server import LabRequest, LabResponse, serve
from tests.scanning.conftest import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_setup() -> tuple[Principal, Any]:
    owner = make_user()
    org = make_org(owner)
    return Principal.of_user(owner), make_project(org)


def test_create_target_needs_admin_and_is_scoped(owner_setup: tuple[Principal, Any]) -> None:
    principal, project = owner_setup
    target = services.create_target(
        principal,
        project,
        name="shop",
        base_url="http://127.0.0.1:1/",
        auth={"username": "scanner", "password": "s3cret"},
    )
    assert "s3cret" not in target.auth_encrypted
    event = AuditEvent.objects.get(action="scan_target.create")
    assert "s3cret" not in str(event.changes) and event.changes["auth"] is True

    member = make_member(project.organization, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.create_target(
            Principal.of_user(member), project, name="x", base_url="http://a.test/"
        )
    stranger = Principal.of_user(make_user())
    with pytest.raises(Http404):
        access.get_target_for(stranger, target.pk)
    assert list(access.targets_for(stranger)) == []
    with pytest.raises(ValidationError):
        services.create_target(principal, project, name="bad", base_url="ftp://a.test/")


def test_verification_by_token_file_header_and_allow_list(
    owner_setup: tuple[Principal, Any],
) -> None:
    principal, project = owner_setup
    tokens: dict[str, str] = {}

    def app(request: LabRequest) -> LabResponse:
        if request.path == "/.well-known/bastion-verification.txt" and "file" in tokens:
            return LabResponse(200, tokens["file"], "text/plain")
        headers = [("X-Bastion-Verification", tokens["header"])] if "header" in tokens else []
        return LabResponse(404 if request.path != "/" else 200, "<html></html>", headers=headers)

    with serve(app) as base:
        by_file = services.create_target(principal, project, name="f", base_url=base)
        by_header = services.create_target(principal, project, name="h", base_url=base)
        tokens["file"] = f"{by_file.verification_token}\n"
        assert (
            services.verify_target(principal, by_file).verification_method
            == VerificationMethod.WELL_KNOWN_FILE
        )
        del tokens["file"]
        tokens["header"] = by_header.verification_token
        assert (
            services.verify_target(principal, by_header).verification_method
            == VerificationMethod.HEADER
        )
        del tokens["header"]

        listed = services.create_target(principal, project, name="l", base_url=base)
        assert (
            services.verify_target(principal, listed).verification_method
            == VerificationMethod.ALLOW_LIST
        )

        config = settings.CONFIG
        settings.CONFIG = dataclasses.replace(config, scan_allow_hosts=[])
        try:
            unproven = services.create_target(principal, project, name="u", base_url=base)
            with pytest.raises(ValidationError):
                services.verify_target(principal, unproven)
        finally:
            settings.CONFIG = config
    unproven.refresh_from_db()
    assert unproven.verified_at is None
    assert AuditEvent.objects.filter(action="scan_target.verify").count() == 3


def test_start_scan_queues_a_scan_job_for_verified_targets_only(
    owner_setup: tuple[Principal, Any],
) -> None:
    principal, project = owner_setup
    cluster = job_services.create_cluster(principal, project.organization, name="main")
    target = services.create_target(
        principal, project, name="t", base_url="http://127.0.0.1:9/", exclude=["*/admin/*"]
    )
    with pytest.raises(ValidationError):
        services.start_scan(principal, target, cluster)
    services.verify_target(principal, target)  # loopback: allow-listed
    scan = services.start_scan(principal, target, cluster)
    job = Job.objects.get(pk=scan.job_id)
    assert job.kind == "scan" and scan.state == ScanState.QUEUED
    assert job.payload["target"] == "http://127.0.0.1:9/"
    assert job.payload["exclude"] == ["*/admin/*"] and job.payload["profile"] == "lightning"
    assert list(access.scans_for(principal, target)) == [scan]
    with pytest.raises(Http404):
        access.get_scan_for(Principal.of_user(make_user()), scan.pk)


class Fixable:
    """The vulnerable lab, whose exposed .git folder and TRACE support can be 'fixed'."""

    def __init__(self) -> None:
        self.fixed = False

    def __call__(self, request: LabRequest) -> LabResponse:
        if self.fixed and (request.path == "/.git/HEAD" or request.method == "TRACE"):
            return LabResponse(404, "<html>Not found</html>")
        return vulnerable.app(request)


def test_findings_lifecycle_across_scans(owner_setup: tuple[Principal, Any]) -> None:
    principal, project = owner_setup
    lab = Fixable()
    with serve(lab) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        scans = [services.Scan.objects.create(target=target) for _ in range(4)]

        first = services.record_scan_result(principal.actor, scans[0], to_json(run(base)))
        assert first.new == len(target.findings.all()) > 30 and first.fixed == 0
        assert set(target.findings.values_list("state", flat=True)) == {FindingState.NEW}

        second = services.record_scan_result(principal.actor, scans[1], to_json(run(base)))
        assert second.new == 0 and second.seen_again == first.new
        assert set(target.findings.values_list("state", flat=True)) == {FindingState.OPEN}

        lab.fixed = True
        third = services.record_scan_result(principal.actor, scans[2], to_json(run(base)))
        fixed = target.findings.filter(state=FindingState.FIXED)
        assert third.fixed == 2
        assert set(fixed.values_list("type", flat=True)) == {
            "exposed-vcs-metadata",
            "http-trace-enabled",
        }

        lab.fixed = False
        fourth = services.record_scan_result(principal.actor, scans[3], to_json(run(base)))
        assert fourth.reopened == 2
        assert target.findings.filter(state=FindingState.REOPENED).count() == 2
    scans[3].refresh_from_db()
    assert scans[3].state == ScanState.FINISHED and scans[3].requests_sent > 0
    assert AuditEvent.objects.filter(action="scan.finish").count() == 4


def test_partial_scan_does_not_mark_uncovered_findings_fixed(
    owner_setup: tuple[Principal, Any],
) -> None:
    principal, project = owner_setup
    with serve(vulnerable.app) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        scan1, scan2 = (services.Scan.objects.create(target=target) for _ in range(2))
        services.record_scan_result(principal.actor, scan1, to_json(run(base)))
        only_tls_txt = services.record_scan_result(
            principal.actor, scan2, to_json(run(base, checks=("security-txt",)))
        )
    assert only_tls_txt.fixed == 0
    assert not target.findings.filter(state=FindingState.FIXED).exists()


def test_triage_and_accepted_risk_expiry(owner_setup: tuple[Principal, Any]) -> None:
    principal, project = owner_setup
    target = Target.objects.create(project=project, name="t", base_url="http://127.0.0.1:9/")
    scan = services.Scan.objects.create(target=target)
    with serve(vulnerable.app) as base:
        services.record_scan_result(principal.actor, scan, to_json(run(base, checks=("cors",))))
    finding = target.findings.get(type="cors-reflected-origin")
    member = make_member(project.organization, Role.MEMBER)
    viewer = make_member(project.organization, Role.VIEWER)

    with pytest.raises(PermissionDenied):
        services.triage_finding(Principal.of_user(viewer), finding, triage=Triage.FALSE_POSITIVE)
    with pytest.raises(ValidationError):
        services.triage_finding(Principal.of_user(member), finding, triage=Triage.ACCEPTED_RISK)
    with pytest.raises(ValidationError):
        services.triage_finding(
            Principal.of_user(member), finding, triage=Triage.NONE, assignee=make_user()
        )
    soon = timezone.now() + timedelta(days=1)
    services.triage_finding(
        Principal.of_user(member),
        finding,
        triage=Triage.ACCEPTED_RISK,
        reason="internal API only",
        accepted_until=soon,
        assignee=member,
    )
    finding.refresh_from_db()
    assert finding.triage == Triage.ACCEPTED_RISK and finding.assignee == member

    assert services.reopen_expired_risks(timezone.now()) == 0
    assert services.reopen_expired_risks(soon + timedelta(seconds=1)) == 1
    finding.refresh_from_db()
    assert finding.triage == Triage.NONE and finding.state == FindingState.REOPENED
    assert AuditEvent.objects.filter(
        action="finding.risk_expired", object_id=str(finding.pk)
    ).exists()
    with pytest.raises(Http404):
        access.get_finding_for(Principal.of_user(make_user()), finding.pk)
