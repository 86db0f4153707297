"""Error alerts and the review digest in Chromium: set a project's alert settings, watch a
spike of real sentry-sdk events raise a signed webhook alert that the page lists, set up the
weekly digest on the review-coverage page and download the coverage PDF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk

from bastion.core.access import Principal
from bastion.core.models import Schedule
from bastion.core.notifications import create_channel
from bastion.errors.alert_models import AlertSettings
from bastion.errors.alerts import memory
from bastion.errors.ingest import committer, key_cache
from bastion.errors.services import create_dsn_key, public_key_of
from tests.e2e.test_ui import _page, _shot
from tests.errors.receivers import hook_url, received_at, webhook_receiver
from tests.errors.sdk_helpers import sentry_client
from tests.factories import PASSWORD, make_org, make_project, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class InventoryError(Exception):
    pass


@pytest.fixture(autouse=True)
def _ingest_in_request_thread() -> Iterator[None]:
    """The live server shares one in-memory database: store in the request thread."""
    enabled = committer.enabled
    committer.enabled = False
    memory.clear()
    key_cache.clear()
    yield
    committer.enabled = enabled
    memory.clear()
    key_cache.clear()


def test_alert_settings_spike_alert_digest_and_pdf(
    live_server: Any, browser: Any, screenshots: Path
) -> None:
    owner = make_user("ada")
    org = make_org(owner, slug="acme")
    project = make_project(org, slug="shop")
    principal = Principal.of_user(owner)
    key = create_dsn_key(principal, project)
    host = live_server.url.split("://", 1)[1]
    dsn = f"http://{public_key_of(key)}@{host}/{project.pk}"
    problems: list[str] = []
    page = _page(browser, problems)
    page.set_default_timeout(60_000)  # a busy machine (PDF rendering launches Chromium too)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ada@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/acme/")

    with webhook_receiver() as hooks:
        create_channel(
            principal, org, name="on-call hook", kind="webhook", target=hook_url(hooks, "/hook"),
            topics=["errors.issue.spike"], secret="e2e-secret-0123456789",
        )  # fmt: skip
        page.goto(f"{live_server.url}/o/acme/errors/shop/alerts/")
        assert "on-call hook" in page.locator("[data-testid=alert-channels]").inner_text()
        _shot(page, screenshots, "errors-alerts-01-settings")
        page.fill("input[name=spike_events]", "3")
        page.fill("input[name=spike_minutes]", "10")
        page.click("button:has-text('Save alert settings')")
        page.wait_for_load_state("load")
        assert "Alert settings saved." in page.content()
        assert AlertSettings.objects.get().spike_events == 3

        with sentry_client(dsn, environment="staging"):
            for n in range(3):
                try:
                    raise InventoryError(f"sku {n} out of stock")
                except InventoryError:
                    sentry_sdk.capture_exception()
            sentry_sdk.flush(timeout=120)  # every event answered before the test reads
        [alert] = received_at(hooks, "/hook")
        assert alert.signed_with("e2e-secret-0123456789")
        assert alert.json["topic"] == "errors.issue.spike"

    page.reload()
    recent = page.locator("[data-testid=recent-alerts]").inner_text()
    assert "Spike in" in recent and "Sent" in recent
    _shot(page, screenshots, "errors-alerts-02-recent")

    page.click("a:has-text('Review coverage')")
    page.wait_for_url("**/review-coverage/")
    page.fill("input[name=cron]", "0 8 * * 1")
    page.fill("input[name=timezone]", "Europe/Lisbon")
    page.fill("input[name=recipients]", "audit@example.test")
    page.click("button:has-text('Save digest')")
    page.wait_for_load_state("load")
    assert "Weekly review digest saved." in page.content()
    assert page.locator("[data-testid=digest-next]").is_visible()
    assert Schedule.objects.get(kind="errors.digest").timezone == "Europe/Lisbon"
    _shot(page, screenshots, "errors-coverage-digest")

    with page.expect_download() as download:
        page.click("[data-testid=coverage-pdf]")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    assert problems == []
