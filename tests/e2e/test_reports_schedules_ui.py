"""Reports and schedules in Chromium: an admin schedules weekday scans of a target and sees the
next runs in its time zone; generates a PDF and a SARIF report of a stored lab scan from the
scan page (rendered by the task, Chromium printing the PDF) and downloads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.core.access import Principal
from bastion.jobs import services as job_services
from bastion.scanning import services
from bastion.scanning.engine.report import to_json
from bastion.scanning.models import Scan, ScanReport, ScanSchedule, Target
from tests.e2e.test_ui import _page, _shot
from tests.factories import PASSWORD, make_org, make_project, make_user
from tests.labs import vulnerable
from tests.labs.server import serve
from tests.scanning.conftest import run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scanned(transactional_db: None) -> tuple[Target, Scan]:
    """A verified target with a stored lightning scan of the vulnerable lab."""
    owner = make_user("ada")
    org = make_org(owner, slug="acme")
    principal = Principal.of_user(owner)
    project = make_project(org, slug="shop")
    job_services.create_cluster(principal, org, name="scanners")
    with serve(vulnerable.app) as base:
        target = services.create_target(principal, project, name="lab", base_url=base)
        services.verify_target(principal, target)
        report = to_json(run(base))
    scan = Scan.objects.create(target=target, created_by="user:ada")
    services.record_scan_result(principal.actor, scan, report)
    return target, scan


def test_schedule_scans_and_download_reports(
    scanned: tuple[Target, Scan], live_server: Any, browser: Any, screenshots: Path
) -> None:
    target, scan = scanned
    problems: list[str] = []
    page = _page(browser, problems)
    page.set_default_timeout(60_000)  # the PDF is printed by a second Chromium meanwhile
    page.goto(f"{live_server.url}/login/?next=/o/acme/scanning/targets/{target.pk}/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h2:has-text('Schedules')")
    assert "No scheduled scans" in page.inner_text("#schedules")

    for cron in ("0 8 * * 1-5", "30 17 * * 1-5"):
        form = page.locator("#schedule-add")
        form.locator("input[name=cron]").fill(cron)
        form.locator("input[name=timezone]").fill("Europe/Lisbon")
        form.locator("button:has-text('Add schedule')").click()
        page.wait_for_selector("text=Schedule added.")
    rows = page.locator("#schedules tbody tr")
    assert rows.count() == 2
    text = page.inner_text("#schedules")
    assert "08:00" in text and "17:30" in text and "Europe/Lisbon" in text
    assert ScanSchedule.objects.filter(target=target).count() == 2
    _shot(page, screenshots, "scan-target-schedules")

    page.goto(f"{live_server.url}/o/acme/scanning/scans/{scan.pk}/")
    page.wait_for_selector("h2:has-text('Reports')")
    assert "No reports yet" in page.inner_text("#reports")
    for fmt in ("pdf", "sarif"):
        page.select_option("#reports select[name=format]", fmt)
        page.click("#reports button:has-text('Generate report')")
        page.wait_for_selector(f"#reports tbody tr:nth-child(1) td:has-text('{fmt.upper()}')")
    page.wait_for_selector("#reports tbody tr:nth-child(2) .badge:has-text('ready')")
    _shot(page, screenshots, "scan-reports")

    with page.expect_download() as sarif_download:
        page.locator("#reports tbody tr:nth-child(1) a:has-text('Download')").click()
    sarif = json.loads(Path(sarif_download.value.path()).read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    with page.expect_download() as pdf_download:
        page.locator("#reports tbody tr:nth-child(2) a:has-text('Download')").click()
    assert Path(pdf_download.value.path()).read_bytes().startswith(b"%PDF-")
    assert ScanReport.objects.filter(scan=scan, state="ready").count() == 2
    assert problems == []
