"""Findings in Chromium: a scanned finding shows its OWASP category and the evidence marked in
the response, and is retested from its page; a person records a manual finding with a
screenshot, sees it on the finding page, and marks it fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from PIL import Image, ImageDraw

from bastion.scanning.models import Finding, FindingState, Scan, Target
from tests.e2e.test_ui import _page, _shot
from tests.factories import PASSWORD
from tests.labs.switchable import SwitchableLab
from tests.scanning.helpers import scanned_target

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scanned(live_server: Any) -> tuple[Target, Finding]:
    """A target with a stored scan of the lab (before Playwright's event loop starts)."""
    target, _ = scanned_target(SwitchableLab(), checks=("reflected-input",))
    xss = target.findings.get(type="reflected-xss", parameter="q")
    connections.close_all()
    return target, xss


def test_scanned_and_manual_findings(
    scanned: tuple[Target, Finding],
    live_server: Any,
    browser: Any,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    target, xss = scanned
    base = target.base_url
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto(f"{live_server.url}/login/?next=/o/acme/scanning/findings/{xss.pk}/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Reflected')")
    assert "A03:2021-Injection" in page.inner_text("body")
    marked = page.locator("pre.log mark.evidence-match").first
    assert xss.details["marker"] in marked.inner_text()
    _shot(page, screenshots, "finding-scanned")

    page.click("button:has-text('Retest')")
    page.wait_for_selector("text=Retest queued")
    retest = Scan.objects.get(retest_of=xss)
    assert retest.job is not None and retest.job.payload["checks"] == ["reflected-input"]

    page.goto(f"{live_server.url}/o/acme/scanning/targets/{target.pk}/")
    page.click("text=Add manual finding")
    page.fill("input[name=title]", "Any user can read any invoice")
    page.select_option("select[name=severity]", "high")
    page.fill("input[name=type]", "idor")
    page.fill("input[name=cwe]", "CWE-639")
    page.select_option("select[name=owasp]", "A01:2021-Broken Access Control")
    page.fill("input[name=url]", base + "invoices/42")
    page.fill("input[name=parameter]", "id")
    page.fill("textarea[name=description]", "Changing the id shows another customer's invoice.")
    page.fill("textarea[name=evidence]", "GET /invoices/43 -> 200, customer B's address")
    shot = tmp_path / "invoice-43.png"
    picture = Image.new("RGB", (320, 160), (238, 242, 255))
    ImageDraw.Draw(picture).text((16, 16), "Invoice #43 - customer B", fill=(30, 41, 59))
    picture.save(shot)
    page.set_input_files("input[name=files]", str(shot))
    _shot(page, screenshots, "finding-manual-form")
    page.click("button:has-text('Record finding')")
    page.wait_for_selector("text=recorded")
    manual = Finding.objects.get(type="idor")
    assert page.locator("img[alt='invoice-43.png']").count() == 1
    assert "A01:2021-Broken Access Control" in page.inner_text("body")
    _shot(page, screenshots, "finding-manual")
    page.click("button:has-text('Mark fixed')")
    page.wait_for_selector("text=Reopen")
    manual.refresh_from_db()
    assert manual.state == FindingState.FIXED
    assert problems == []
