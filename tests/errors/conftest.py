"""Fixtures of the errors tests: a project with a DSN key, a DSN for the live server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from bastion.core.access import Principal
from bastion.core.models import Organization, Project, User
from bastion.errors.alerts import memory as alert_memory
from bastion.errors.ingest import committer, key_cache, rate_limiter
from bastion.errors.models import DsnKey
from bastion.errors.rules import rule_cache
from bastion.errors.services import create_dsn_key, public_key_of
from tests.errors.chunked_server import ChunkedLiveServer
from tests.factories import make_org, make_project, make_user


@dataclass
class Setup:
    owner: User
    org: Organization
    project: Project
    key: DsnKey

    @property
    def public_key(self) -> str:
        return public_key_of(self.key)

    def dsn(self, base_url: str) -> str:
        host = base_url.split("://", 1)[1].rstrip("/")
        return f"http://{self.public_key}@{host}/{self.project.pk}"


def make_setup() -> Setup:
    owner = make_user()
    org = make_org(owner=owner)
    project = make_project(org)
    key = create_dsn_key(Principal.of_user(owner), project)
    return Setup(owner, org, project, key)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings: Any) -> None:
    # These tests create a user each; Argon2 (the production hasher) is tested in tests/core.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_ingest_state() -> Iterator[None]:
    """Per-process ingest state starts empty; writes happen in the request thread (the test's
    transaction) unless a test turns group commit on."""
    enabled = committer.enabled
    committer.enabled = False
    rate_limiter.reset()
    key_cache.clear()
    rule_cache.clear()
    alert_memory.clear()
    yield
    committer.enabled = enabled
    rate_limiter.reset()
    key_cache.clear()
    rule_cache.clear()
    alert_memory.clear()


@pytest.fixture
def setup(db: None) -> Setup:
    return make_setup()


@pytest.fixture
def setup_committed(transactional_db: None) -> Setup:
    return make_setup()


@pytest.fixture
def live_setup(transactional_db: None) -> Iterator[Setup]:
    """For tests with ``live_server``: its request threads close their database connections
    after each request, and leftovers are ended at teardown, so that PostgreSQL can drop the
    test database (CONN_MAX_AGE would otherwise keep them open past the test)."""
    settings_dict = connection.settings_dict
    before = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    try:
        yield make_setup()
    finally:
        settings_dict["CONN_MAX_AGE"] = before
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture
def chunked_live_server(live_setup: Setup) -> Iterator[ChunkedLiveServer]:
    server = ChunkedLiveServer()
    try:
        yield server
    finally:
        server.stop()
