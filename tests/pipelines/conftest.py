from __future__ import annotations

from typing import Any

import pytest

from tests.jobs.helpers import World
from tests.pipelines.helpers import Runner


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings: Any) -> None:
    # Argon2 is the production hasher (tested elsewhere); these tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db: None) -> World:
    return World()


@pytest.fixture
def runner(world: World, django_capture_on_commit_callbacks: Any) -> Runner:
    return Runner.of(world, django_capture_on_commit_callbacks)
