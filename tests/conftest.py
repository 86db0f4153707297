"""Shared fixtures: users, organizations and API clients on the real database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings

from tests.template_db import (
    PG_URL,
    SQLITE_NAME,
    clone_pg,
    copy_sqlite,
    remove_shared_template,
    set_run_id,
    shared_template,
    template_database_name,
)

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


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """pytest-django's database set-up, except that the test database is cloned from the run's
    shared migrated template (tests/template_db.py) instead of migrated again by each worker:
    Django then keeps it (``keepdb``) and finds no migration left to apply."""
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    data_dir, _ = shared_template()
    test_name = settings.DATABASES["default"]["TEST"]["NAME"]
    with django_db_blocker.unblock():
        if PG_URL:
            clone_pg(test_name, template_database_name())
        else:
            copy_sqlite(data_dir / SQLITE_NAME, Path(test_name))
        verbosity = request.config.option.verbose
        config = setup_databases(
            verbosity=verbosity, interactive=False, keepdb=True, serialized_aliases=set()
        )
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=verbosity)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        set_run_id()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, or a run without xdist
        remove_shared_template()


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
