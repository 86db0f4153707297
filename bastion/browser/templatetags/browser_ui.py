"""Small display helpers for the browser-test pages."""

from __future__ import annotations

from django import template

register = template.Library()

_TONES = {
    "passed": "green",
    "failed": "red",
    "error": "red",
    "queued": "blue",
    "running": "blue",
    "skipped": "grey",
}


@register.filter
def tone(status: str) -> str:
    return _TONES.get(str(status), "grey")


@register.filter
def seconds(duration_ms: object) -> str:
    try:
        return f"{float(str(duration_ms)) / 1000:.2f} s"
    except ValueError:
        return "—"
