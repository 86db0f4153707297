"""Known-vulnerable JavaScript libraries, matched with retire.js's repository (vendored, see
``data/README.md``). Implements retire.js's extractors (uri, filename, filecontent, hashes)
and its version comparison."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
DATA = Path(__file__).with_name("data") / "retirejs-repository.json"
VERSION_PATTERN = r"[0-9][0-9.a-z_\-]+"
MAX_CONTENT = 3_000_000


@dataclass(frozen=True)
class Vulnerability:
    below: str
    at_or_above: str | None
    severity: str
    summary: str
    cves: tuple[str, ...]
    info: tuple[str, ...]


@dataclass(frozen=True)
class Library:
    name: str
    uri: tuple[re.Pattern[str], ...]
    filename: tuple[re.Pattern[str], ...]
    filecontent: tuple[re.Pattern[str], ...]
    hashes: dict[str, str]
    vulnerabilities: tuple[Vulnerability, ...]


@dataclass(frozen=True)
class Match:
    library: str
    version: str
    vulnerabilities: tuple[Vulnerability, ...]
    how: str  # uri, filename, filecontent or hash

    @property
    def severity(self) -> str:
        order = ["none", "low", "medium", "high", "critical"]
        return max(
            (v.severity for v in self.vulnerabilities),
            key=lambda s: order.index(s) if s in order else 0,
        )

    @property
    def cves(self) -> list[str]:
        return sorted({c for v in self.vulnerabilities for c in v.cves})


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern.replace("§§version§§", VERSION_PATTERN)))
        except re.error:
            log.debug("skipping retire.js pattern Python cannot compile: %s", pattern)
    return tuple(compiled)


def _comparable(part: str | None) -> int | str:
    if not part:
        return 0
    return int(part) if part.isdigit() else part


def is_at_or_above(version1: str, version2: str) -> bool:
    """retire.js's comparison: dot/dash parts, numbers above pre-release strings."""
    v1 = re.split(r"[.-]", version1)
    v2 = re.split(r"[.-]", version2)
    for i in range(max(len(v1), len(v2))):
        a = _comparable(v1[i] if i < len(v1) else None)
        b = _comparable(v2[i] if i < len(v2) else None)
        if type(a) is not type(b):
            return isinstance(a, int)
        if a > b:  # type: ignore[operator]
            return True
        if a < b:  # type: ignore[operator]
            return False
    return True


def _vulnerability(raw: dict[str, Any]) -> Vulnerability:
    identifiers = raw.get("identifiers", {})
    return Vulnerability(
        below=str(raw.get("below", "")),
        at_or_above=raw.get("atOrAbove"),
        severity=str(raw.get("severity", "medium")).lower(),
        summary=str(identifiers.get("summary", "")),
        cves=tuple(identifiers.get("CVE", []) or []),
        info=tuple(raw.get("info", []) or []),
    )


@cache
def load_repository(path: Path = DATA) -> tuple[Library, ...]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    libraries = []
    for name, entry in raw.items():
        if name == "retire-example":
            continue
        extractors = entry.get("extractors", {})
        libraries.append(
            Library(
                name=name,
                uri=_compile(extractors.get("uri", [])),
                filename=_compile(extractors.get("filename", [])),
                filecontent=_compile(extractors.get("filecontent", [])),
                hashes=dict(extractors.get("hashes", {})),
                vulnerabilities=tuple(_vulnerability(v) for v in entry.get("vulnerabilities", [])),
            )
        )
    return tuple(libraries)


def _vulnerable(library: Library, version: str) -> tuple[Vulnerability, ...]:
    return tuple(
        v
        for v in library.vulnerabilities
        if v.below
        and not is_at_or_above(version, v.below)
        and (v.at_or_above is None or is_at_or_above(version, v.at_or_above))
    )


def _first_version(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match and match.groups() and match.group(1):
            return re.sub(r"[.-]min$", "", match.group(1))  # as retire.js does
    return None


def scan_url(url: str) -> list[Match]:
    """Libraries identified by the script URL alone (works for third-party CDNs: no fetch)."""
    filename = url.rsplit("/", 1)[-1].split("?", 1)[0]
    matches = []
    for library in load_repository():
        for how, patterns, text in (
            ("uri", library.uri, url),
            ("filename", library.filename, filename),
        ):
            version = _first_version(patterns, text)
            if version:
                vulns = _vulnerable(library, version)
                if vulns:
                    matches.append(Match(library.name, version, vulns, how))
                break
    return matches


def scan_content(content: str) -> list[Match]:
    """Libraries identified by the script's content (banner comments, version strings, hash)."""
    content = content[:MAX_CONTENT]
    digest = hashlib.sha1(content.encode("utf-8", "surrogateescape")).hexdigest()  # noqa: S324 - retire.js keys by SHA-1
    matches = []
    for library in load_repository():
        version = library.hashes.get(digest)
        how = "hash"
        if version is None:
            version = _first_version(library.filecontent, content)
            how = "filecontent"
        if version:
            vulns = _vulnerable(library, version)
            if vulns:
                matches.append(Match(library.name, version, vulns, how))
    return matches
