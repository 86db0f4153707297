"""Settings → Notifications in Chromium: add a signed webhook channel, send a test, see it sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_ui import _page, _shot
from tests.factories import PASSWORD, make_org, make_user
from tests.receivers import webhook_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_add_a_webhook_channel_and_send_a_test(
    live_server: Any, browser: Any, screenshots: Path
) -> None:
    make_org(make_user("ada"), slug="acme")
    problems: list[str] = []
    page = _page(browser, problems)
    page.set_default_timeout(30_000)  # generous: the first request warms the live server up
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/acme/")
    page.goto(f"{live_server.url}/o/acme/settings/")
    page.click("nav.tabs a:has-text('Notifications')")
    page.wait_for_url("**/settings/notifications/")
    assert page.locator(".empty-title", has_text="No notification channels").is_visible()
    with webhook_receiver() as receiver:
        page.fill("input[name=name]", "security on-call")
        page.select_option("select[name=kind]", "webhook")
        page.fill("input[name=topics]", "errors.* scanning.*")
        page.fill("input[name=target]", receiver.url)
        page.fill("input[name=secret]", "hmac-key")
        page.click("button:has-text('Add channel')")
        page.wait_for_url("**/settings/notifications/")
        row = page.locator("tr", has_text="security on-call")
        assert "signed" in row.inner_text()
        row.locator("button:has-text('Send test')").click()
        page.wait_for_load_state("load")
        (request,) = receiver.wait_for(1)
        assert json.loads(request.body)["topic"] == "core.channel.test"
        page.reload()
    assert page.locator("td .badge-green", has_text="Sent").first.is_visible()
    _shot(page, screenshots, "30-notifications")
    assert problems == []
