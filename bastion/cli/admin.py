"""Administration commands: users, organizations, projects, tokens, clusters."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    return None
