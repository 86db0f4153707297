"""Small display helpers for the scanning pages."""

from __future__ import annotations

from django import template

register = template.Library()

SEVERITY_TONES = {
    "critical": "red",
    "high": "red",
    "medium": "amber",
    "low": "blue",
    "info": "grey",
}
STATE_TONES = {
    "new": "violet",
    "open": "amber",
    "reopened": "red",
    "fixed": "green",
    "queued": "grey",
    "running": "blue",
    "finished": "green",
    "failed": "red",
    "canceled": "grey",
}


@register.filter
def severity_tone(severity: str) -> str:
    return SEVERITY_TONES.get(severity, "grey")


@register.filter
def scan_tone(state: str) -> str:
    return STATE_TONES.get(state, "grey")
