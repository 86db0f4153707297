"""Manual findings with evidence attachments, through the API and the pages: validation, roles,
audit, safe serving of files, SLA and triage like scanned ones, state set by a person."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.scanning import actions, manual, sla
from bastion.scanning.models import Finding, FindingAttachment, FindingSource, FindingState, Target
from tests.api.conftest import ApiClient, Team, make_team
from tests.factories import make_project

pytestmark = pytest.mark.django_db

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
IDOR = {
    "title": "Any user can read any invoice",
    "severity": "high",
    "type": "idor",
    "cwe": "cwe-639",
    "owasp": "A01:2021-Broken Access Control",
    "url": "http://127.0.0.1:9/invoices/42",
    "method": "get",
    "parameter": "id",
    "description": "Changing the id returns another customer's invoice.",
    "evidence": "GET /invoices/43 -> 200 with customer B's address",
    "remediation": "Check the invoice's owner on every read.",
}


@pytest.fixture
def team(db: None, settings: Any) -> Team:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_team("acme")


@pytest.fixture
def target(team: Team) -> Target:
    project = make_project(team.org, slug="web")
    return Target.objects.create(project=project, name="shop", base_url="http://127.0.0.1:9/")


def _upload(client: ApiClient, finding_id: int, name: str, data: bytes) -> Any:
    url = f"/api/v1/organizations/acme/findings/{finding_id}/attachments"
    return client.client.post(
        url,
        {"file": SimpleUploadedFile(name, data, content_type="text/html")},
        HTTP_AUTHORIZATION=f"Bearer {client.token}",
    )


def test_manual_finding_over_the_api_is_validated_audited_and_on_sla(
    team: Team, target: Target
) -> None:
    url = f"/api/v1/organizations/acme/scan-targets/{target.pk}/findings"
    assert team.as_viewer().post(url, IDOR).status == 403
    bad = team.as_owner().post(url, {**IDOR, "severity": "urgent", "cwe": "639", "url": "ftp://x"})
    assert bad.status == 400 and {"severity", "cwe", "url"} <= set(bad.body["errors"])
    assert not Finding.objects.exists()

    created = team.as_owner().post(url, IDOR)
    assert created.status == 201
    body = created.body
    assert (body["cwe"], body["method"], body["owasp"]) == ("CWE-639", "GET", IDOR["owasp"])
    assert body["details"]["description"] == IDOR["description"]
    assert body["state"] == "new" and body["due_at"] is not None  # high: due in 14 days
    finding = Finding.objects.get(pk=body["id"])
    assert finding.source == FindingSource.MANUAL and finding.reported_by
    assert finding.fingerprint.startswith("manual:v1:")
    assert AuditEvent.objects.filter(action="finding.manual_create", object_id=str(finding.pk))

    # It takes part in the SLA and the overdue filter like a scanned finding.
    assert not Finding.objects.filter(sla.overdue_q()).exists()
    assert Finding.objects.filter(sla.overdue_q(timezone.now() + timedelta(days=15))).exists()
    # ... and in triage.
    triage = f"/api/v1/organizations/acme/findings/{finding.pk}/triage"
    assert team.as_owner().post(triage, {"triage": "false-positive"}).status == 200

    # A scan never fixes it (no check found it); a person does, and may reopen it.
    state = f"/api/v1/organizations/acme/findings/{finding.pk}/state"
    assert team.as_viewer().post(state, {"state": "fixed"}).status == 403
    assert team.as_owner().post(state, {"state": "open"}).status == 400
    assert team.as_owner().post(state, {"state": "fixed"}).body["state"] == "fixed"
    assert team.as_owner().post(state, {"state": "fixed"}).status == 400
    assert team.as_owner().post(state, {"state": "reopened"}).body["state"] == "reopened"
    retest = f"/api/v1/organizations/acme/findings/{finding.pk}/retest"
    assert team.as_owner().post(retest, {"cluster": "nope"}).status == 404


def test_attachments_are_sniffed_limited_and_served_safely(
    team: Team, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = team.as_owner()
    finding_id = owner.post(
        f"/api/v1/organizations/acme/scan-targets/{target.pk}/findings", IDOR
    ).body["id"]
    base = f"/api/v1/organizations/acme/findings/{finding_id}/attachments"

    shot = _upload(owner, finding_id, "../../screen shot.png", PNG)
    assert shot.status_code == 201
    assert shot.json()["name"] == "screen shot.png" and shot.json()["content_type"] == "image/png"
    page = _upload(owner, finding_id, "evil.html", b"<script>alert(1)</script>")
    assert page.json()["content_type"] == "text/plain"  # sniffed, never the client's text/html
    assert _upload(team.as_viewer(), finding_id, "x.txt", b"x").status_code == 403
    monkeypatch.setenv(manual.ATTACHMENT_ENV, "100")
    assert _upload(owner, finding_id, "big.bin", b"\0" * 101).status_code == 413
    assert FindingAttachment.objects.count() == 2

    listed = team.as_viewer().get(base).body
    assert [a["name"] for a in listed] == ["screen shot.png", "evil.html"]
    image = team.as_viewer().get(f"{base}/{listed[0]['id']}")
    assert image.status == 200 and image.raw == PNG
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline;")
    served = team.as_viewer().get(f"{base}/{listed[1]['id']}")
    assert served.headers["Content-Type"] == "text/plain"
    assert served.headers["Content-Disposition"] == 'attachment; filename="evil.html"'
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert team.as_viewer().get(f"{base}/999999").status == 404
    events = AuditEvent.objects.filter(action="finding.attachment_add")
    assert events.count() == 2


def test_manual_finding_from_the_page_with_a_screenshot(team: Team, target: Target) -> None:
    client = Client()
    client.force_login(team.owner)
    form = client.get(f"/o/acme/scanning/targets/{target.pk}/findings/new/")
    assert form.status_code == 200 and b"OWASP Top 10 (2021)" in form.content
    invalid = client.post(
        f"/o/acme/scanning/targets/{target.pk}/findings/", {**IDOR, "severity": "x"}
    )
    assert invalid.status_code == 400 and not Finding.objects.exists()
    created = client.post(
        f"/o/acme/scanning/targets/{target.pk}/findings/",
        {**IDOR, "method": "GET", "files": [SimpleUploadedFile("proof.png", PNG)]},
    )
    finding = Finding.objects.get()
    assert created.status_code == 302 and created["Location"].endswith(f"/{finding.pk}/")
    shown = client.get(created["Location"])
    attachment = finding.attachments.get()
    assert b"Any user can read any invoice" in shown.content
    assert b"A01:2021-Broken Access Control" in shown.content
    assert f"/attachments/{attachment.pk}/".encode() in shown.content
    assert b"<img" in shown.content and b"Mark fixed" in shown.content
    fixed = client.post(f"/o/acme/scanning/findings/{finding.pk}/state/", {"state": "fixed"})
    assert fixed.status_code == 302
    finding.refresh_from_db()
    assert finding.state == FindingState.FIXED
    download = client.get(f"/o/acme/scanning/findings/{finding.pk}/attachments/{attachment.pk}/")
    assert b"".join(download.streaming_content) == PNG  # type: ignore[attr-defined]


def test_deleting_the_target_deletes_its_stored_files(
    team: Team, target: Target, django_capture_on_commit_callbacks: Any
) -> None:
    owner = team.as_owner()
    finding_id = owner.post(
        f"/api/v1/organizations/acme/scan-targets/{target.pk}/findings", IDOR
    ).body["id"]
    assert _upload(owner, finding_id, "shot.png", PNG).status_code == 201
    stored = FindingAttachment.objects.get()
    storage, name = stored.file.storage, stored.file.name
    assert storage.exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_target(Principal.of_user(team.owner), target)
    assert not FindingAttachment.objects.exists() and not storage.exists(name)
