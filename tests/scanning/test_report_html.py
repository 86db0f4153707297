"""The report's HTML pieces: evidence excerpts (escaped, marked, cut) and the trend chart."""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.scanning.reports.data import TrendPoint
from bastion.scanning.reports.html import CONTEXT_LINES, excerpt, trend_svg


def test_excerpt_escapes_everything_and_marks_the_evidence_in_any_case() -> None:
    response = "HTTP/1.1 200\nset-cookie: sid=1; Path=/\n\n<script>alert(1)</script>"
    out = str(excerpt(response, "Set-Cookie: sid=1; Path=/"))
    assert "<mark>set-cookie: sid=1; Path=/</mark>" in out
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_excerpt_finds_the_part_of_tagged_evidence_that_is_in_the_text() -> None:
    body = 'HTTP/1.1 200\n\n<input value="x\'&quot;<>">'
    out = str(excerpt(body, '[attribute-double-quoted] <input value="x\'&quot;<>">'))
    assert out.count("<mark>") == 1 and "&lt;input value=" in out


def test_excerpt_keeps_the_lines_around_the_evidence_and_says_what_was_cut() -> None:
    lines = [f"line {i}" for i in range(200)]
    out = str(excerpt("\n".join(lines), "line 100"))
    assert "<mark>line 100</mark>" in out
    assert f"line {100 - CONTEXT_LINES}" in out and f"line {100 - CONTEXT_LINES - 1}\n" not in out
    assert "[… 94 lines above …]" in out and "more lines …]" in out
    assert "line 150" not in out


def test_trend_chart_draws_one_bar_segment_per_severity_present() -> None:
    at = datetime(2026, 11, 27, tzinfo=UTC)
    points = [
        TrendPoint(1, at, {"critical": 0, "high": 2, "medium": 3, "low": 0, "info": 1}),
        TrendPoint(2, at, {"critical": 1, "high": 0, "medium": 0, "low": 0, "info": 0}),
    ]
    svg = str(trend_svg(points))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 4 + 5  # segments + legend swatches
    assert ">#1<" in svg and ">#2<" in svg and ">6<" in svg
    assert str(trend_svg([])) == ""
