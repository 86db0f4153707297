"""Exposed sensitive files: VCS metadata, .env, backups, status pages. A short list, each
confirmed by a content signature (which also rules out soft-404 pages)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import root_url
from bastion.scanning.engine.context import ScanContext
from bastion.scanning.engine.errors import TargetError
from bastion.scanning.engine.http import HttpResponse

MAX_BODY = 65_536


def _text(pattern: str, flags: int = 0) -> Callable[[HttpResponse], bool]:
    regex = re.compile(pattern.encode(), flags)
    return lambda r: bool(regex.search(r.body))


def _magic(*prefixes: bytes) -> Callable[[HttpResponse], bool]:
    return lambda r: r.body.startswith(prefixes)


def _not_html(r: HttpResponse) -> bool:
    return not r.is_html and b"<html" not in r.body[:2000].lower()


@dataclass(frozen=True)
class Probe:
    path: str
    type: str
    confirm: Callable[[HttpResponse], bool]


PROBES = (
    Probe(".git/HEAD", "exposed-vcs-metadata", _text(r"\Aref: refs/|\A[0-9a-f]{40}\s*\Z")),
    Probe(".git/config", "exposed-vcs-metadata", _text(r"\[core\]")),
    Probe(".svn/wc.db", "exposed-vcs-metadata", _magic(b"SQLite format 3")),
    Probe(".hg/requires", "exposed-vcs-metadata", _text(r"\A(?:revlogv1|store|fncache)")),
    Probe(
        ".env", "exposed-env-file", lambda r: _not_html(r) and _text(r"^[A-Z][A-Z0-9_]*=", re.M)(r)
    ),
    Probe(
        ".env.production",
        "exposed-env-file",
        lambda r: _not_html(r) and _text(r"^[A-Z][A-Z0-9_]*=", re.M)(r),
    ),
    Probe("wp-config.php.bak", "exposed-backup-file", _text(r"DB_PASSWORD|<\?php")),
    Probe("config.php.bak", "exposed-backup-file", _text(r"<\?php")),
    Probe("backup.zip", "exposed-backup-file", _magic(b"PK\x03\x04")),
    Probe("backup.tar.gz", "exposed-backup-file", _magic(b"\x1f\x8b")),
    Probe("dump.sql", "exposed-backup-file", _text(r"CREATE TABLE|INSERT INTO", re.I)),
    Probe("db.sql", "exposed-backup-file", _text(r"CREATE TABLE|INSERT INTO", re.I)),
    Probe("phpinfo.php", "exposed-status-page", _text(r"<title>phpinfo\(\)|PHP Version \d")),
    Probe("info.php", "exposed-status-page", _text(r"<title>phpinfo\(\)|PHP Version \d")),
    Probe("server-status", "exposed-status-page", _text(r"Apache Server Status for")),
    Probe("server-info", "exposed-status-page", _text(r"Apache Server Information")),
    Probe("actuator/env", "exposed-status-page", _text(r"\"(?:propertySources|activeProfiles)\"")),
    Probe("debug/vars", "exposed-status-page", _text(r"\"memstats\"")),
    Probe("elmah.axd", "exposed-status-page", _text(r"Error Log for")),
)
BACKUP_SUFFIXES = (".bak", "~", ".old", ".orig")
SOURCE_RE = re.compile(rb"<\?php|<%|^import |^from \w+ import|^#!/", re.M)


class SensitiveFilesCheck(Check):
    name = "sensitive-files"
    finding_types = (
        "exposed-vcs-metadata",
        "exposed-env-file",
        "exposed-backup-file",
        "exposed-status-page",
    )

    async def run(self, ctx: ScanContext) -> None:
        root = root_url(ctx.target)
        probes = [(root + p.path, p.type, p.confirm) for p in PROBES]
        for path in await self._scripts_paths(ctx):
            for suffix in BACKUP_SUFFIXES:
                probes.append(
                    (
                        path + suffix,
                        "exposed-backup-file",
                        lambda r: _not_html(r) and bool(SOURCE_RE.search(r.body)),
                    )
                )
        results = await asyncio.gather(
            *(self._probe(ctx, url) for url, _, _ in probes), return_exceptions=True
        )
        for (url, type_id, confirm), result in zip(probes, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, TargetError):
                    continue
                raise result
            if result.status == 200 and confirm(result):
                first_line = result.body[:120].decode("utf-8", "replace").splitlines()
                self.report(
                    ctx,
                    type_id,
                    url=url,
                    response=result,
                    evidence=f"200 {result.content_type or 'no content type'}: "
                    + (first_line[0] if first_line else ""),
                )

    async def _probe(self, ctx: ScanContext, url: str) -> HttpResponse:
        return await ctx.http.get(url, max_body_bytes=MAX_BODY)

    async def _scripts_paths(self, ctx: ScanContext) -> list[str]:
        """Server-side script URLs seen (index.php, app.py...): their backups are probed."""
        paths: list[str] = []
        for page in await ctx.pages():
            candidates = [page.response.url]
            if page.document is not None:
                candidates += page.document.links
            for url in candidates:
                parts = urlsplit(url)
                base = f"{parts.scheme}://{parts.netloc}{parts.path}"
                if (
                    re.search(
                        r"\.(?:php\d?|asp|aspx|jsp|py|rb|pl|cgi|inc|conf|config)$", parts.path
                    )
                    and base not in paths
                    and ctx.http.scope.contains(base)
                ):
                    paths.append(base)
        return paths[:5]
