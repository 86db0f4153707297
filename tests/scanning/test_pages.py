"""The scanning pages through the real URLconf, session auth, CSRF-exempt test client and
templates: targets, a target, a scan with live progress, a finding with triage, overdue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.jobs import services as job_services
from bastion.scanning.models import Finding, FindingComment, Scan, ScanState, Target, Triage
from tests.factories import make_member, make_org, make_project, make_user
from tests.scanning.helpers import scanning_world

pytestmark = pytest.mark.django_db


def login(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_add_verify_and_scan_a_target_from_the_pages() -> None:
    owner = make_user()
    org = make_org(owner, slug="acme")
    make_project(org, slug="web")
    job_services.create_cluster(Principal.of_user(owner), org, name="main")
    client = login(owner)

    landing = client.get("/o/acme/scanning/")
    assert landing.status_code == 200 and b"No scan targets yet" in landing.content
    created = client.post(
        "/o/acme/scanning/targets/",
        {"project": "web", "name": "lab", "base_url": "http://127.0.0.1:9/"},
    )
    target = Target.objects.get(name="lab")
    assert created.status_code == 302 and created["Location"].endswith(f"/targets/{target.pk}/")
    page = client.get(f"/o/acme/scanning/targets/{target.pk}/")
    assert target.verification_token.encode() in page.content  # how to prove ownership
    assert b"Start lightning scan" not in page.content

    client.post(f"/o/acme/scanning/targets/{target.pk}/verify/")
    target.refresh_from_db()
    assert target.verified_at is not None
    started = client.post(f"/o/acme/scanning/targets/{target.pk}/scans/", {"cluster": "main"})
    scan = Scan.objects.get(target=target)
    assert started["Location"].endswith(f"/scanning/scans/{scan.pk}/")

    scan_page = client.get(f"/o/acme/scanning/scans/{scan.pk}/")
    live_url = f"/o/acme/scanning/scans/{scan.pk}/live/".encode()
    assert b'hx-get="' + live_url in scan_page.content  # polls while queued/running
    assert client.get(live_url.decode()).status_code == 200
    client.post(f"/o/acme/scanning/scans/{scan.pk}/cancel/")
    scan.job.refresh_from_db()  # type: ignore[union-attr]
    assert scan.job is not None and scan.job.state == "canceled"
    assert b"lab" in client.get("/o/acme/scanning/").content


def test_finding_page_triage_comment_and_overdue_view() -> None:
    owner = make_user()
    org = make_org(owner, slug="acme")
    project = make_project(org, slug="web")
    target, scan, finding = scanning_world(project)
    Finding.objects.filter(pk=finding.pk).update(
        first_seen_at=timezone.now() - timedelta(days=31),
        request="GET / HTTP/1.1",
        response="HTTP/1.1 200 OK",
    )
    member = make_member(org, Role.MEMBER)
    client = login(member)

    page = client.get(f"/o/acme/scanning/findings/{finding.pk}/")
    assert page.status_code == 200
    assert b"no Strict-Transport-Security header" in page.content
    assert b"GET / HTTP/1.1" in page.content and b"overdue" in page.content
    overdue = client.get("/o/acme/scanning/overdue/")
    assert f"/scanning/findings/{finding.pk}/".encode() in overdue.content

    until = (timezone.now() + timedelta(days=10)).date().isoformat()
    client.post(
        f"/o/acme/scanning/findings/{finding.pk}/triage/",
        {
            "triage": "accepted-risk",
            "reason": "staging only",
            "accepted_until": until,
            "assignee": member.username,
        },
    )
    finding.refresh_from_db()
    assert finding.triage == Triage.ACCEPTED_RISK and finding.assignee == member
    assert (
        f"/scanning/findings/{finding.pk}/".encode()
        not in client.get("/o/acme/scanning/overdue/").content
    )
    client.post(f"/o/acme/scanning/findings/{finding.pk}/comments/", {"body": "ticket SEC-1"})
    assert FindingComment.objects.get().body == "ticket SEC-1"
    assert b"ticket SEC-1" in client.get(f"/o/acme/scanning/findings/{finding.pk}/").content
    assert AuditEvent.objects.filter(action__in=["finding.triage", "finding.comment"]).count() == 2

    Scan.objects.filter(pk=scan.pk).update(state=ScanState.FINISHED)
    finished = client.get(f"/o/acme/scanning/scans/{scan.pk}/")
    assert b"hx-get" not in finished.content or b"/live/" not in finished.content
    assert b"Missing HSTS" in finished.content
    assert client.get(f"/o/acme/scanning/targets/{target.pk}/").status_code == 200
