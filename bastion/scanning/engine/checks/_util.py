"""Helpers shared by several checks (not a check: modules starting with _ are skipped)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from bastion.scanning.engine.context import Page


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def root_url(url: str) -> str:
    return origin(url) + "/"


def snippet(text: str, index: int, radius: int = 60) -> str:
    start = max(0, index - radius)
    return text[start : index + radius].replace("\n", " ")


@dataclass(frozen=True)
class CookieSpec:
    name: str
    attributes: dict[str, str]

    @property
    def secure(self) -> bool:
        return "secure" in self.attributes

    @property
    def httponly(self) -> bool:
        return "httponly" in self.attributes

    @property
    def samesite(self) -> str | None:
        return self.attributes.get("samesite")


def parse_set_cookie(header: str) -> CookieSpec | None:
    parts = [p.strip() for p in header.split(";")]
    if not parts or "=" not in parts[0]:
        return None
    name = parts[0].split("=", 1)[0].strip()
    attributes: dict[str, str] = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key:
            attributes[key.strip().lower()] = value.strip()
    return CookieSpec(name, attributes) if name else None


def parse_csp(value: str) -> dict[str, list[str]]:
    """Directive -> source list (lower-cased). The first occurrence of a directive wins."""
    policy: dict[str, list[str]] = {}
    for chunk in value.split(";"):
        tokens = chunk.strip().split()
        if not tokens:
            continue
        name = tokens[0].lower()
        policy.setdefault(name, [t.lower() for t in tokens[1:]])
    return policy


def csp_of(page: Page) -> tuple[dict[str, list[str]] | None, bool]:
    """The enforced CSP of a page (header, else meta), and whether a report-only one exists."""
    headers = page.response.headers
    values = headers.get_list("content-security-policy")
    if not values and page.document is not None:
        values = [
            m.get("content", "")
            for m in page.document.meta
            if m.get("http-equiv", "").lower() == "content-security-policy"
        ]
    report_only = bool(headers.get_list("content-security-policy-report-only"))
    if not values:
        return None, report_only
    merged: dict[str, list[str]] = {}
    for value in values:
        for key, sources in parse_csp(value).items():
            merged.setdefault(key, sources)
    return merged, report_only


VERSION_RE = re.compile(r"\d+\.\d+")
