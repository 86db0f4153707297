"""Template context shared by every page: the navigation and the current organization."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

NAVIGATION = [
    ("dashboard", "Dashboard"),
    ("scanning", "Scanning"),
    ("browser", "Browser tests"),
    ("pipelines", "Pipelines"),
    ("errors", "Errors"),
    ("agents", "Agents"),
    ("audit", "Audit log"),
    ("settings", "Settings"),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    return {"navigation": NAVIGATION}
