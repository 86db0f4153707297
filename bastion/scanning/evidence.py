"""Where a finding's evidence sits in its request or response excerpt, for highlighting.

Checks write evidence in a few shapes — a header line (``Server: Apache/2.4``), a probe and
its echo (``next=X -> Location: X``), a labelled excerpt (``200 text/plain: ref: ...``), a
reflection context (``[html] ...``) — and some leave the exact marker in ``details``. We try
the most specific candidate first and mark every case-insensitive occurrence of the first one
found; the text is escaped before any markup is added."""

from __future__ import annotations

import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

MIN_LEN = 4
MAX_LEN = 300


def candidates(evidence: str, details: dict[str, Any] | None) -> list[str]:
    found: list[str] = []
    marker = (details or {}).get("marker")
    if isinstance(marker, str):
        found.append(marker)
    text = re.sub(r"^\[[a-z-]+\]\s*", "", evidence.strip())
    if " -> " in text:
        found.append(text.split(" -> ", 1)[1])
    found.append(text)
    if ": " in text:
        found.append(text.split(": ", 1)[1])
    lines = [c.splitlines()[0].strip() for c in found if c.strip()]
    return [c[:MAX_LEN] for c in dict.fromkeys(lines) if len(c) >= MIN_LEN]


def needle_in(text: str, evidence: str, details: dict[str, Any] | None) -> str | None:
    lower = text.lower()
    for candidate in candidates(evidence, details):
        if candidate.lower() in lower:
            return candidate
    return None


def highlight(text: str, evidence: str, details: dict[str, Any] | None) -> SafeString:
    """``text`` escaped, with the evidence's occurrences wrapped in ``<mark>``."""
    needle = needle_in(text, evidence, details)
    if needle is None:
        return escape(text)
    parts = re.split(f"({re.escape(needle)})", text, flags=re.IGNORECASE)
    out = [
        f'<mark class="evidence-match">{escape(p)}</mark>' if i % 2 else str(escape(p))
        for i, p in enumerate(parts)
    ]
    return mark_safe("".join(out))  # noqa: S308 - every part is escaped above
