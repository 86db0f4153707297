"""Job logs as HTML: ANSI colours and Buildkite's collapsible sections.

A command's output keeps its colours (SGR escape codes become ``ansi-*`` classes: bold, faint,
italic, underline, the 8 standard and 8 bright colours for text and background) and its
sections: a line starting ``--- `` opens a collapsed section, ``+++ `` an expanded one, ``~~~ `` a
collapsed one, and ``^^^ +++`` expands the section before it — as Buildkite's log viewer does.
Everything else an escape code can do (cursor moves, 256 and true colours, titles) is dropped;
a carriage return keeps what was written last on the line (progress bars). All text is escaped:
a log is untrusted output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

# CSI sequences (ESC [ ... final byte) and OSC sequences (ESC ] ... BEL or ESC \), then any
# other two-byte escape.
_ESCAPE = re.compile(r"\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
_SECTION = re.compile(r"^(---|\+\+\+|~~~) (.*)$")
_EXPAND_PREVIOUS = "^^^ +++"
MAX_SECTIONS = 2_000  # past this, markers are shown as text: one page, not thousands of widgets


@dataclass
class _Style:
    flags: set[str] = field(default_factory=set)
    fg: str = ""
    bg: str = ""

    def apply(self, params: str) -> None:
        codes = [int(c) if c.isdigit() else 0 for c in params.split(";")] if params else [0]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.flags.clear()
                self.fg = self.bg = ""
            elif code in (1, 2, 3, 4):
                self.flags.add({1: "bold", 2: "faint", 3: "italic", 4: "underline"}[code])
            elif code == 22:
                self.flags -= {"bold", "faint"}
            elif code == 23:
                self.flags.discard("italic")
            elif code == 24:
                self.flags.discard("underline")
            elif 30 <= code <= 37 or 90 <= code <= 97:
                self.fg = f"fg-{code}"
            elif 40 <= code <= 47 or 100 <= code <= 107:
                self.bg = f"bg-{code}"
            elif code == 39:
                self.fg = ""
            elif code == 49:
                self.bg = ""
            elif code in (38, 48):  # 256 / true colour: skip its arguments, keep the default
                i += 2 if codes[i + 1 : i + 2] == [5] else 4
            i += 1

    def classes(self) -> str:
        names = sorted(self.flags) + [name for name in (self.fg, self.bg) if name]
        return " ".join(f"ansi-{name}" for name in names)


def _line_html(line: str, style: _Style) -> str:
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    out: list[str] = []
    position = 0
    for match in _ESCAPE.finditer(line):
        out.append(_span(line[position : match.start()], style))
        if match.group(2) == "m":
            style.apply(match.group(1))
        position = match.end()
    out.append(_span(line[position:], style))
    return "".join(out)


def _span(text: str, style: _Style) -> str:
    if not text:
        return ""
    classes = style.classes()
    return f'<span class="{classes}">{escape(text)}</span>' if classes else escape(text)


@dataclass
class LogSection:
    title: SafeString
    expanded: bool
    lines: list[str] = field(default_factory=list)

    @property
    def html(self) -> SafeString:
        return mark_safe("\n".join(self.lines))  # noqa: S308 - every piece was escaped


def render_log(text: str) -> list[LogSection]:
    """The log as sections; the first one (output before any marker) has an empty title."""
    style = _Style()
    sections = [LogSection(title=mark_safe(""), expanded=True)]
    for raw in text.split("\n"):
        plain = _ESCAPE.sub("", raw).lstrip("\r")
        if plain.strip() == _EXPAND_PREVIOUS and len(sections) > 1:
            sections[-1].expanded = True
            continue
        marker = _SECTION.match(plain)
        if marker and len(sections) < MAX_SECTIONS:
            heading = raw.replace(f"{marker.group(1)} ", "", 1)  # keeps the heading's colours
            title = mark_safe(_line_html(heading, _Style()))  # noqa: S308 - escaped
            sections.append(LogSection(title=title, expanded=marker.group(1) == "+++"))
            continue
        sections[-1].lines.append(_line_html(raw, style))
    if sections[-1].lines and sections[-1].lines[-1] == "":
        sections[-1].lines.pop()  # the newline that ends the log
    if len(sections) > 1 and not sections[0].lines:
        sections.pop(0)
    return sections
