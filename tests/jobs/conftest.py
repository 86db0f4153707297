"""Fixtures for the jobs tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings: Any) -> None:
    # Argon2 is the production hasher (tested elsewhere); these tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
