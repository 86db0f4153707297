"""Badge colours and durations of build and step states."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()

_TONES = {
    "passed": "green",
    "running": "blue",
    "scheduled": "grey",
    "waiting": "grey",
    "blocked": "amber",
    "failing": "red",
    "failed": "red",
    "soft_failed": "amber",
    "canceling": "amber",
    "canceled": "amber",
    "broken": "grey",
    "skipped": "grey",
    "not_run": "grey",
    "limited": "grey",
}


@register.filter
def build_tone(state: str) -> str:
    return _TONES.get(str(state), "grey")


@register.filter
def state_text(state: str) -> str:
    return {"broken": "not run", "soft_failed": "soft failed", "not_run": "not run"}.get(
        str(state), str(state).replace("_", " ")
    )


@register.simple_tag
def span(started: datetime | None, finished: datetime | None) -> str:
    if started is None:
        return "—"
    seconds = max(0, int(((finished or timezone.now()) - started).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m {seconds:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"
