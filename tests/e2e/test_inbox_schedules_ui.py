"""In Chromium: the Inbox (list, filter, a message with its HTML sandboxed, an attachment), a
suite's schedules (add, see the next runs, pause) and a run's JUnit download — with no CSP
violation or script error on any page, and the message's own script never running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.browser import runs, services
from bastion.core.access import Principal
from tests.browser.inbox_helpers import deliver, run_address
from tests.e2e.test_ui import _page, _shot
from tests.factories import PASSWORD, make_org, make_project, make_user
from tests.web.conftest import make_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_inbox_schedules_and_junit(live_server: Any, browser: Any, screenshots: Path) -> None:
    owner = make_user("ada")
    org = make_org(owner, slug="acme")
    make_cluster(org)
    principal = Principal.of_user(owner)
    project = make_project(org, slug="shop")
    test = services.save_test(
        principal, project, {"name": "Sign up", "start_url": "/", "steps": [{"log": "hi"}]}
    )
    services.create_environment(
        principal, project, slug="staging", name="Staging", base_url="http://127.0.0.1:9"
    )
    services.create_suite(principal, project, slug="nightly", name="Nightly", tests=[test.slug])
    run = runs.start_run(principal, project, runs.RunRequest(test=test, video=False))
    message = deliver([run_address(run)])
    deliver([run_address(run, label="buyer")], subject="Your receipt")
    problems: list[str] = []
    page = _page(browser, problems)
    page.set_default_timeout(30_000)  # generous: the first request warms the live server up
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ada@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/acme/")

    page.goto(f"{live_server.url}/o/acme/browser/")
    page.click("a:has-text('Inbox')")
    page.wait_for_url("**/o/acme/inbox/")
    assert page.locator("tbody tr").count() == 2
    _shot(page, screenshots, "40-inbox")
    page.fill("#address", run_address(run))
    page.click("button:has-text('Filter')")
    page.wait_for_load_state("load")
    assert page.locator("tbody tr").count() == 1
    page.click("a:has-text('Confirm your sign-up')")
    page.wait_for_url(f"**/inbox/{message.pk}/")
    frame = page.frame_locator("iframe.inbox-frame")
    assert "424242" in frame.locator("#x").inner_text()
    assert page.title().startswith("Confirm your sign-up")  # the message's script never ran
    assert "terms.txt" in page.locator("table").inner_text()
    _shot(page, screenshots, "41-inbox-message")
    with page.expect_download() as download:
        page.click("a:has-text('terms.txt')")
    assert download.value.suggested_filename == "terms.txt"

    page.goto(f"{live_server.url}/o/acme/browser/shop/suites/nightly/")
    assert page.locator("#schedules .empty").is_visible()
    page.fill("#sc-cron-new", "0 6 * * 1-5")
    page.fill("#sc-tz-new", "Europe/Lisbon")
    page.select_option("#sc-env-new", "staging")
    page.click("button:has-text('Add schedule')")
    page.wait_for_load_state("load")
    row = page.locator("#schedules tbody tr").first
    assert "0 6 * * 1-5" in row.inner_text() and "Staging" in row.inner_text()
    assert row.locator("td:nth-child(3) div").count() == 3  # the next three runs
    _shot(page, screenshots, "42-suite-schedules")
    row.locator("summary:has-text('Edit')").click()
    _shot(page, screenshots, "43-suite-schedule-edit")
    row.locator("input[name=enabled]").uncheck()
    row.locator("button:has-text('Save')").click()
    page.wait_for_load_state("load")
    assert "paused" in page.locator("#schedules tbody tr").first.inner_text().lower()

    runs.BrowserRun.objects.filter(pk=run.pk).update(
        status="failed", results=[{"slug": test.slug, "test": "Sign up", "status": "failed"}]
    )
    page.goto(f"{live_server.url}/o/acme/browser/shop/runs/{run.pk}/")
    with page.expect_download() as junit:
        page.click("a:has-text('JUnit XML')")
    assert junit.value.suggested_filename == f"browser-run-{run.pk}-junit.xml"
    # The only console errors are the message's own script and remote image being refused.
    frame_url = f"/o/acme/inbox/{message.pk}/html/"
    blocked = [p for p in problems if frame_url in p and "sandboxed" in p]
    pixel = [p for p in problems if "127.0.0.1:9/pixel.png" in p]
    assert blocked and len(blocked) + len(pixel) == len(problems), problems
