"""Small display helpers for the browser-test pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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


@register.filter
def kind_label(action: str) -> str:
    """``wait_for_element`` -> "Wait for element"."""
    return str(action).replace("_", " ").capitalize().replace(" js", " JavaScript")


_BAR_COLOURS = {"passed": "#22c55e", "failed": "#ef4444", "error": "#b91c1c"}
CHART_W, CHART_H, CHART_BARS = 640, 80, 50


@register.simple_tag
def duration_chart(entries: Sequence[Any]) -> str:
    """Duration of the last runs, oldest left, one bar each coloured by result (inline SVG:
    presentation attributes only, so the CSP's style-src 'self' holds)."""
    points = []
    for entry in list(entries)[:CHART_BARS][::-1]:
        try:
            points.append((float(entry.result.get("duration_ms") or 0), str(entry.status)))
        except (TypeError, ValueError):
            points.append((0.0, str(entry.status)))
    if not points:
        return ""
    top = max(duration for duration, _ in points) or 1.0
    step = CHART_W / CHART_BARS
    bars = []
    for number, (duration, status) in enumerate(points):
        height = max(2.0, (CHART_H - 14) * duration / top)
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="{}"><title>{} · {} s</title></rect>',
                f"{number * step + 1:.1f}",
                f"{CHART_H - height:.1f}",
                f"{step - 3:.1f}",
                f"{height:.1f}",
                _BAR_COLOURS.get(status, "#9ca3af"),
                status,
                f"{duration / 1000:.2f}",
            )
        )
    label = format_html(
        '<text x="0" y="10" font-size="10" fill="#6b7385">slowest {} s</text>', f"{top / 1000:.2f}"
    )
    return format_html(
        '<svg class="trend" viewBox="0 0 {} {}" role="img" aria-label="Duration of the last '
        '{} runs">{}{}</svg>',
        CHART_W,
        CHART_H,
        len(points),
        label,
        mark_safe("".join(bars)),  # noqa: S308 - each bar built with format_html
    )


@register.simple_tag
def passed_of(run: Any) -> str:
    results = [r for r in run.results if isinstance(r, dict)]
    if not results:
        return "—"
    passed = sum(1 for r in results if r.get("status") == "passed")
    return f"{passed}/{len(results)} passed"


@register.simple_tag
def run_duration(run: Any) -> str:
    if run.started_at is None or run.finished_at is None:
        return "—"
    return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"


@dataclass(frozen=True)
class _Bar:
    result: dict[str, Any]
    status: str


@register.simple_tag
def run_chart(runs: Sequence[Any]) -> str:
    """The suite's runs as a duration trend coloured by result (finished runs only)."""
    bars = []
    for run in runs:
        if run.started_at is None or run.finished_at is None:
            continue
        seconds = (run.finished_at - run.started_at).total_seconds()
        bars.append(_Bar({"duration_ms": seconds * 1000}, str(run.status)))
    return duration_chart(bars)


@register.simple_tag
def jobs_done(jobs: Sequence[Any]) -> str:
    done = sum(1 for job in jobs if job.is_finished)
    return f"{done} of {len(jobs)} job{'s' if len(jobs) != 1 else ''} finished"
