"""Scan reports end to end: real lightning scans of the vulnerable lab stored through the real
action, reports requested over the API, rendered by the task (Chromium for the PDF), stored
through Django's storage and downloaded; SARIF validated against the official 2.1.0 schema."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pypdf import PdfReader

from bastion.core import pdf
from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.scanning import services
from bastion.scanning.engine.report import to_json
from bastion.scanning.models import Finding, FindingState, Scan, ScanReport, ScanState, Target
from bastion.scanning.reports.data import collect
from bastion.scanning.reports.html import render_report_html
from tests.api.conftest import ApiClient, Team, make_team
from tests.factories import make_project
from tests.scanning.conftest import run

pytestmark = pytest.mark.django_db
SCHEMA = Path(__file__).parent / "schemas" / "sarif-2.1.0-rtm.5.json"
ORG = "/api/v1/organizations/acme"
# Kept for a person to open (gitignored), as the e2e tests keep their screenshots.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"


@pytest.fixture
def team(db: None, settings: Any) -> Team:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_team("acme")


@pytest.fixture(scope="module")
def lab_report(vulnerable_lab: str) -> dict[str, Any]:
    """One real lightning scan of the vulnerable lab, as the agent hands it back."""
    return to_json(run(vulnerable_lab))


@pytest.fixture
def scanned(team: Team, vulnerable_lab: str, lab_report: dict[str, Any]) -> list[Scan]:
    """Three scans: everything found, then half of it fixed, then everything back."""
    project = make_project(team.org, slug="web")
    target = Target.objects.create(project=project, name="lab", base_url=vulnerable_lab)
    actor = Principal.of_user(team.owner).actor
    half = {**lab_report, "findings": lab_report["findings"][::2]}
    scans = []
    for report in (lab_report, half, lab_report):
        scan = Scan.objects.create(target=target, state=ScanState.RUNNING, created_by="test")
        services.record_scan_result(actor, scan, report)
        scans.append(scan)
    return scans


@pytest.fixture
def rendered(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Iterator[Callable[[ApiClient, str, dict[str, str]], dict[str, Any]]]:
    """Request a report and run the task it queued (the immediate backend runs it on commit)."""

    def request(client: ApiClient, url: str, body: dict[str, str]) -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            reply = client.post(url, body)
        assert reply.status == 202, reply.body
        assert reply.body["state"] == "queued"
        return dict(client.get(f"{ORG}/scan-reports/{reply.body['id']}").body)

    yield request


def _download(client: ApiClient, report: dict[str, Any]) -> bytes:
    assert report["state"] == "ready", report
    reply = client.get(report["download"])
    assert reply.status == 200
    assert "attachment" in reply.headers["Content-Disposition"]
    return reply.raw


def test_json_csv_and_sarif_of_a_scan(team: Team, scanned: list[Scan], rendered: Any) -> None:
    owner, scan = team.as_owner(), scanned[-1]
    url = f"{ORG}/scans/{scan.pk}/reports"
    seen = Finding.objects.filter(last_seen_scan=scan)
    assert seen.count() >= 10

    document = json.loads(_download(owner, rendered(owner, url, {"format": "json"})))
    assert document["subject"] == "scan" and document["scan"]["id"] == scan.pk
    assert len(document["findings"]) == seen.count() == document["summary"]["total"]
    by_severity = {s: seen.filter(severity=s).count() for s in document["summary"]["counts"]}
    assert document["summary"]["counts"] == by_severity
    assert [p["scan_id"] for p in document["summary"]["trend"]] == [s.pk for s in scanned]
    totals = [sum(p["counts"].values()) for p in document["summary"]["trend"]]
    assert totals[1] < totals[0] == totals[2] == seen.count()  # half fixed, then reopened
    assert document["scan"]["checks"] and document["scan"]["requests_sent"] > 0

    rows = list(
        csv.DictReader(
            io.StringIO(
                _download(owner, rendered(owner, url, {"format": "csv"})).decode("utf-8-sig")
            )
        )
    )
    assert len(rows) == seen.count()
    assert {r["type"] for r in rows} == set(seen.values_list("type", flat=True))
    assert all(r["cwe"].startswith("CWE-") for r in rows)

    sarif = json.loads(_download(owner, rendered(owner, url, {"format": "sarif"})))
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    results = sarif["runs"][0]["results"]
    assert len(results) == seen.count()
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"scan_report.request", "scan_report.ready", "scan_report.download"} <= actions


def test_pdf_of_a_scan_has_summary_method_and_every_finding(
    team: Team, scanned: list[Scan], rendered: Any
) -> None:
    owner, scan = team.as_owner(), scanned[-1]
    report = rendered(owner, f"{ORG}/scans/{scan.pk}/reports", {"format": "pdf"})
    content = _download(owner, report)
    assert content.startswith(b"%PDF-") and report["size"] == len(content)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "scan-report.pdf").write_bytes(content)
    html = render_report_html(collect(scan.target, scan))
    (ARTIFACTS / "scan-report.html").write_text(html)
    reader = PdfReader(io.BytesIO(content))
    pages = [page.extract_text() for page in reader.pages]
    text = unicodedata.normalize("NFKC", "\n".join(pages))
    for heading in ("Executive summary", "Service-level agreement", "Trend", "Scope and method"):
        assert heading in text
    assert "Checks run" in text and "Requests sent" in text and "REMEDIATION" in text
    flat = " ".join(text.split()).replace("- ", "-")  # titles wrap across lines, also at "-"
    for finding in Finding.objects.filter(last_seen_scan=scan):
        assert finding.title in flat, finding.title
    assert f"Page 1 of {len(pages)}" in pages[0]
    ScanReport.objects.get(pk=report["id"]).file.delete(save=False)  # storage is cleaned


def test_target_report_covers_the_latest_state(
    team: Team, scanned: list[Scan], rendered: Any
) -> None:
    owner = team.as_owner()
    target = scanned[0].target
    fixed = Finding.objects.filter(target=target).first()
    assert fixed is not None
    Finding.objects.filter(pk=fixed.pk).update(state=FindingState.FIXED)
    report = rendered(owner, f"{ORG}/scan-targets/{target.pk}/reports", {"format": "json"})
    document = json.loads(_download(owner, report))
    assert document["subject"] == "target" and document["scan"]["id"] == scanned[-1].pk
    ids = {f["id"] for f in document["findings"]}
    assert fixed.pk not in ids
    assert len(ids) == Finding.objects.filter(target=target).exclude(state="fixed").count()
    listed = team.as_viewer().get(f"{ORG}/scan-targets/{target.pk}/reports")
    assert [r["id"] for r in listed.body] == [report["id"]]


def test_bad_format_and_roles_change_nothing(team: Team, scanned: list[Scan]) -> None:
    url = f"{ORG}/scans/{scanned[0].pk}/reports"
    before = AuditEvent.objects.count()
    assert team.as_owner().post(url, {"format": "docx"}).status == 400
    assert team.as_viewer().post(url, {"format": "pdf"}).status == 403
    assert team.as_owner().post(url, {"format": "x" * 50}).status in (400, 422)
    assert not ScanReport.objects.exists() and AuditEvent.objects.count() == before


def test_a_report_that_cannot_render_fails_with_its_reason(
    team: Team, scanned: list[Scan], rendered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real failure: the browser binary is not there.
    monkeypatch.setattr(pdf, "CHROMIUM", "/nonexistent/chromium")
    owner = team.as_owner()
    report = rendered(owner, f"{ORG}/scans/{scanned[0].pk}/reports", {"format": "pdf"})
    assert report["state"] == "failed" and report["download"] is None
    assert "chromium" in report["error"].lower()
    assert owner.get(f"{ORG}/scan-reports/{report['id']}/download").status == 400
    assert AuditEvent.objects.filter(action="scan_report.failed").count() == 1


def test_a_queued_report_shows_progress_on_the_scan_page(team: Team, scanned: list[Scan]) -> None:
    scan = scanned[0]
    # Not inside captured on-commit callbacks: the task never runs, the report stays queued.
    reply = team.as_owner().post(f"{ORG}/scans/{scan.pk}/reports", {"format": "pdf"})
    assert reply.status == 202
    client = ApiClient(user=team.viewer).client
    page = client.get(f"/o/acme/scanning/scans/{scan.pk}/").content.decode()
    assert "<progress" in page and "waiting for a worker" in page
    assert f"/o/acme/scanning/targets/{scan.target_id}/reports/panel/?scan={scan.pk}" in page
    panel = client.get(f"/o/acme/scanning/targets/{scan.target_id}/reports/panel/?scan={scan.pk}")
    assert panel.status_code == 200 and b"hx-trigger" in panel.content
    assert b"Generate report" not in panel.content  # a viewer reads, cannot request
