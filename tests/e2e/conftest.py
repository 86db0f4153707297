"""Real Chromium (the system one) driven by Playwright's sync API against a live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

# Playwright's sync API runs an event loop in this thread; Django's ORM must be allowed here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


# Function scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break later tests that call asyncio.run (and the check in tests/conftest.py).
@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # While Playwright's loop runs, Django keeps the test's connections in that async
            # context: close them now, or they outlive the loop and keep the test database busy.
            connections.close_all()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(autouse=True)
def short_db_connections(transactional_db: None) -> Iterator[None]:
    """The live server's request threads close their connections after each request, so
    PostgreSQL can drop the test database at the end."""
    settings_dict = connection.settings_dict
    before = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    try:
        yield
    finally:
        settings_dict["CONN_MAX_AGE"] = before


@pytest.fixture(autouse=True)
def fast_password_hasher(settings: Any) -> None:
    """Argon2 stays the production hasher (tested elsewhere); these tests sign in a lot."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
