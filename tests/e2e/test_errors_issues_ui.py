"""Issues in Chromium, on events the real sentry-sdk sent: search the list by a tag, open an
issue (stack trace with source context, tag distributions, chart), step to an older event, set
fingerprint rules on their page, and resolve issues in bulk from the list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk

from bastion.core.access import Principal
from bastion.errors.ingest import committer, key_cache
from bastion.errors.models import Issue, IssueStatus, ProjectErrorSettings
from bastion.errors.services import create_dsn_key, public_key_of
from tests.e2e.test_ui import _page, _shot
from tests.errors.sdk_helpers import sentry_client
from tests.factories import PASSWORD, make_org, make_project, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class CardDeclined(Exception):
    pass


class StockError(Exception):
    pass


def _gateway(order: int) -> None:
    raise TimeoutError(f"payment gateway timed out for order {order}")


def charge_card(order: int, amount: float) -> None:
    try:
        _gateway(order)
    except TimeoutError as exc:
        raise CardDeclined(f"card declined for order {order} ({amount:.2f} EUR)") from exc


def reserve_stock(sku: str) -> None:
    raise StockError(f"no stock left for {sku}")


@pytest.fixture(autouse=True)
def _ingest_in_request_thread() -> Iterator[None]:
    """The live server shares one in-memory database: store in the request thread."""
    enabled = committer.enabled
    committer.enabled = False
    key_cache.clear()
    yield
    committer.enabled = enabled
    key_cache.clear()


def _send_events(dsn: str) -> None:
    with sentry_client(dsn, release="shop@1.4.2", environment="production"):
        for n, region in enumerate(("eu", "eu", "eu", "us", "eu", "ap")):
            with sentry_sdk.new_scope() as scope:
                scope.set_tag("region", region)
                scope.set_tag("browser", ("Firefox 128", "Chrome 131")[n % 2])
                scope.set_user({"id": str(100 + n), "email": f"buyer{n}@example.test"})
                scope.set_context("cart", {"items": n + 1, "currency": "EUR"})
                scope.add_breadcrumb(category="http", message=f"POST /api/cart/{n}", level="info")
                scope.add_breadcrumb(category="ui.click", message="button#pay", level="info")
                if n == 0:
                    scope.add_attachment(bytes=b"cart: 2 items\n", filename="cart.txt")
                try:
                    charge_card(1000 + n, 19.9 * (n + 1))
                except CardDeclined:
                    sentry_sdk.capture_exception()
            if n == 0:
                # The event with the attachment must arrive first for the page's first/latest
                # assertions below: wait until it has been sent.
                sentry_sdk.flush(timeout=60)
        try:
            reserve_stock("SKU-42")
        except StockError:
            sentry_sdk.capture_exception()


def test_search_issue_page_fingerprint_rules_and_bulk_resolve(
    live_server: Any, browser: Any, screenshots: Path
) -> None:
    owner = make_user("ada")
    org = make_org(owner, slug="acme")
    project = make_project(org, slug="shop")
    key = create_dsn_key(Principal.of_user(owner), project)
    host = live_server.url.split("://", 1)[1]
    _send_events(f"http://{public_key_of(key)}@{host}/{project.pk}")
    assert Issue.objects.filter(project=project).count() == 2

    problems: list[str] = []
    page = _page(browser, problems)
    page.set_default_timeout(60_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ada@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/acme/")

    page.goto(f"{live_server.url}/o/acme/errors/shop/")
    assert page.locator("[data-testid=issue-row]").count() == 2
    _shot(page, screenshots, "errors-issues-01-list")
    page.fill("input[name=q]", "region:us")
    page.click("button:has-text('Filter')")
    page.wait_for_load_state("load")
    rows = page.locator("[data-testid=issue-row]")
    assert rows.count() == 1 and "CardDeclined" in rows.first.inner_text()

    rows.first.locator("a").first.click()
    page.wait_for_load_state("load")
    assert page.locator("[data-testid=exception]").count() == 2  # raised + its cause
    assert page.locator("[data-testid=in-app-frame]").count() >= 2
    assert "charge_card(1000 + n" in page.locator(".src-current").first.inner_text() or (
        "raise CardDeclined" in page.locator(".src").first.inner_text()
    )
    region = page.locator("[data-testid=tag-distribution]", has_text="region")
    assert "67%" in region.inner_text()  # eu: 4 of 6
    assert page.locator("[data-testid=chart] rect.ev-bar").count() == 48
    assert page.locator("[data-testid=attachments]").count() == 0  # the latest event has none
    _shot(page, screenshots, "errors-issues-02-issue")
    page.click("[data-testid=first-event]")
    page.wait_for_load_state("load")
    assert "cart.txt" in page.locator("[data-testid=attachments]").inner_text()
    assert page.locator("[data-testid=older-event]").count() == 0
    _shot(page, screenshots, "errors-issues-03-first-event")

    page.goto(f"{live_server.url}/o/acme/errors/shop/fingerprint-rules/")
    page.fill("textarea[name=rules]", "error.type:StockError -> stock, {{ tags.region }}\nbad")
    page.click("button:has-text('Save rules')")
    page.wait_for_load_state("load")
    assert "line 2" in page.locator("[data-testid=rules-error]").inner_text()
    page.fill("textarea[name=rules]", "error.type:StockError -> stock, {{ tags.region }}")
    page.click("button:has-text('Save rules')")
    page.wait_for_load_state("load")
    assert page.locator("[data-testid=parsed-rule]").count() == 1
    _shot(page, screenshots, "errors-issues-04-fingerprint-rules")
    saved = ProjectErrorSettings.objects.get(project=project).fingerprint_rules
    assert saved.startswith("error.type:StockError")

    page.goto(f"{live_server.url}/o/acme/errors/shop/?sort=events")
    for box in page.locator("input[name=issue]").all():
        box.check()
    page.click("#bulk button:has-text('Resolve')")
    page.wait_for_load_state("load")
    assert "2 issues marked resolved." in page.content()
    assert set(Issue.objects.values_list("status", flat=True)) == {IssueStatus.RESOLVED}
    assert problems == []
