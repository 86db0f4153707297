"""The report's HTML (printed to PDF by Chromium): evidence excerpts with the evidence marked,
and the trend chart as server-side SVG. Everything taken from a scanned site is escaped."""

from __future__ import annotations

import html
import re
from datetime import datetime

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from bastion import __version__ as bastion_version
from bastion.scanning.reports.data import SEVERITIES, ReportData, TrendPoint

HEAD_LINES = 12  # shown when the evidence is not in the text (e.g. a missing header)
CONTEXT_LINES = 6  # shown above and below the evidence
LINE_CHARS = 300
COLORS = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#f59e0b",
    "low": "#2563eb",
    "info": "#9ca3af",
}


def excerpt(text: str, evidence: str) -> SafeString:
    """An escaped excerpt of a request or response: the lines around the evidence (or the
    first lines when the evidence is not in it), each occurrence of the evidence wrapped in
    ``<mark>``, with what was cut said in the text."""
    if not text:
        return mark_safe("")
    lines = text.splitlines()
    evidence = _needle(text, evidence)
    at = text.lower().find(evidence.lower()) if evidence else -1
    if at < 0:
        first, last = 0, HEAD_LINES
    else:
        line = text.count("\n", 0, at)
        first = max(0, line - CONTEXT_LINES)
        last = text.count("\n", 0, at + len(evidence)) + CONTEXT_LINES + 1
    window = "\n".join(_clip(line) for line in lines[first:last])
    # Header names are stored lower-case: the evidence is marked whatever its case.
    pieces = re.split(f"({re.escape(evidence)})", window, flags=re.I) if evidence else [window]
    marked = "".join(
        f"<mark>{html.escape(p)}</mark>" if i % 2 else html.escape(p) for i, p in enumerate(pieces)
    )
    if first:
        marked = f'<span class="cut">[… {first} lines above …]</span>\n' + marked
    if len(lines) > last:
        marked += f'\n<span class="cut">[… {len(lines) - last} more lines …]</span>'
    return mark_safe(marked)  # noqa: S308 - every piece of text above is escaped


def _needle(text: str, evidence: str) -> str:
    """The part of the evidence that appears in ``text``: checks write evidence such as
    ``[html] <p>...`` or ``Origin: x -> Access-Control-Allow-Origin: x, credentials allowed``."""
    candidates = [evidence, re.sub(r"^\[[^\]]*\]\s*", "", evidence)]
    candidates += [part.split(", ")[0].strip() for part in evidence.split(" -> ")]
    lowered = text.lower()
    return next((c for c in candidates if len(c) >= 3 and c.lower() in lowered), "")


def _clip(line: str) -> str:
    return line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " […]"


def trend_svg(points: list[TrendPoint], width: int = 640, height: int = 210) -> SafeString:
    """Stacked bars: findings by severity that each of the last scans reported."""
    if not points:
        return mark_safe("")
    left, bottom, top, right = 36, 34, 12, 110
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(1, *(sum(p.counts.values()) for p in points))
    step = plot_w / len(points)
    bar = min(42.0, step * 0.6)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Findings per scan">'
    ]
    for tick in _ticks(peak):
        y = top + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{tick}</text>'
        )
    for i, point in enumerate(points):
        x = left + step * i + (step - bar) / 2
        y = top + plot_h
        for severity in reversed(SEVERITIES):
            count = point.counts.get(severity, 0)
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[severity]}"><title>{severity}: {count}</title></rect>'
            )
        total = sum(point.counts.values())
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
            f'font-size="10">{total}</text>'
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 13}" text-anchor="middle" '
            f'font-size="9">#{point.scan_id}</text>'
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 25}" text-anchor="middle" '
            f'font-size="8" fill="#555">{_day(point.at)}</text>'
        )
    for i, severity in enumerate(SEVERITIES):
        y = top + 6 + i * 16
        parts.append(
            f'<rect x="{width - right + 14}" y="{y}" width="10" height="10" '
            f'fill="{COLORS[severity]}"/><text x="{width - right + 29}" y="{y + 9}" '
            f'font-size="10">{severity}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers, dates and fixed words only


def _ticks(peak: int) -> list[int]:
    step = max(1, -(-peak // 4))
    return list(range(0, peak + 1, step))


def _day(value: datetime) -> str:
    return value.strftime("%d %b")


def render_report_html(data: ReportData) -> str:
    findings = [
        {
            "item": item,
            "request": excerpt(item.row.request, item.row.evidence),
            "response": excerpt(item.row.response, item.row.evidence),
        }
        for item in data.findings
    ]
    context = {
        "data": data,
        "target": data.target,
        "scan": data.scan,
        "findings": findings,
        "counts": [(s, data.counts[s], COLORS[s]) for s in SEVERITIES],
        "chart": trend_svg(data.trend),
        "version": bastion_version,
    }
    return render_to_string("scanning/report/report.html", context)
