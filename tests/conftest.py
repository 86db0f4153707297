"""Shared fixtures: users, organizations and API clients on the real database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings

# No per-example deadline: it is a timed assertion, and on a loaded two-core machine a 2 ms
# example sometimes takes 300 ms. Examples stay bounded by each test's max_examples.
hypothesis_settings.register_profile("bastion", deadline=None)
hypothesis_settings.load_profile("bastion")

DB_FIXTURES = {
    "db",
    "transactional_db",
    "live_server",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    # Runs `bastion` processes on the configured database (tests/cli/conftest.py).
    "cli",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that never touch the database run once, on the SQLite pass only.
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        uses_db = fixtures & DB_FIXTURES or item.get_closest_marker("django_db")
        if not uses_db and not item.get_closest_marker("dbprocess"):
            item.add_marker(pytest.mark.nodb)


def pytest_report_header() -> str:
    return f"database: {connection.vendor} ({connection.settings_dict['NAME']})"


@pytest.fixture(autouse=True)
def _no_event_loop_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that leaves an event loop running in the main thread breaks every later test that
    calls asyncio.run (the scanner) or starts Playwright: name the culprit instead."""
    yield
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    pytest.fail(f"{request.node.nodeid} left an event loop running: {loop!r}")
