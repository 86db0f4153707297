"""Small presentation filters: relative times, durations, job and agent badges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

register = template.Library()

# State -> badge colour family (see .badge-* in bastion.css).
_TONES = {
    "idle": "green",
    "busy": "blue",
    "lost": "red",
    "disconnected": "grey",
    "scheduled": "grey",
    "assigned": "violet",
    "accepted": "violet",
    "running": "blue",
    "passed": "green",
    "failed": "red",
    "canceled": "amber",
    "timed_out": "amber",
    "expired": "grey",
    "owner": "violet",
    "admin": "blue",
    "member": "green",
    "viewer": "grey",
}


def _seconds_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@register.filter
def ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = int((timezone.now() - moment).total_seconds())
    if 0 <= seconds < 5:
        return "just now"
    if seconds < 0:
        return f"in {_seconds_text(-seconds)}"
    return f"{_seconds_text(seconds)} ago"


@register.filter
def seconds_ago(seconds: int) -> str:
    return f"{_seconds_text(max(0, int(seconds)))} ago"


@register.filter
def tone(state: str) -> str:
    return _TONES.get(str(state), "grey")


@register.filter
def job_duration(job: Any) -> str:
    start = getattr(job, "started_at", None)
    if start is None:
        return "—"
    end = getattr(job, "finished_at", None) or timezone.now()
    return _seconds_text(max(0, int((end - start).total_seconds())))


@register.filter
def tag_items(tags: Any) -> list[str]:
    if not isinstance(tags, dict):
        return []
    return [f"{key}={value}" for key, value in sorted(tags.items())]


@register.filter
def changes_text(changes: Any) -> str:
    """A one-line summary of an audit row's before/after changes."""
    if not isinstance(changes, dict) or not changes:
        return ""
    parts = []
    for key, value in changes.items():
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            parts.append(f"{key}: {value['before']} → {value['after']}")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)
