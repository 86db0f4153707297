"""JavaScript libraries with known vulnerabilities (retire.js data): by URL for every script,
by content for in-scope scripts and inline scripts."""

from __future__ import annotations

import asyncio

from bastion.scanning.engine import retire
from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext
from bastion.scanning.engine.definitions import Severity
from bastion.scanning.engine.errors import TargetError
from bastion.scanning.engine.http import HttpResponse

MAX_SCRIPTS = 15
SEVERITY = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


class JsLibrariesCheck(Check):
    name = "js-libraries"
    finding_types = ("vulnerable-js-library",)

    async def run(self, ctx: ScanContext) -> None:
        scripts: dict[str, str] = {}  # script URL -> page URL
        inline: list[tuple[str, str]] = []
        for page in await ctx.pages():
            if page.document is None:
                continue
            for script in page.document.scripts:
                if script.src:
                    scripts.setdefault(script.src, page.response.url)
                elif script.inline.strip():
                    inline.append((page.response.url, script.inline))
        found: dict[tuple[str, str], tuple[str, retire.Match]] = {}
        for src in scripts:
            for match in retire.scan_url(src):
                found.setdefault((match.library, match.version), (src, match))
        fetchable = [s for s in scripts if ctx.http.scope.contains(s)][:MAX_SCRIPTS]
        results = await asyncio.gather(
            *(ctx.http.get(s, max_body_bytes=retire.MAX_CONTENT) for s in fetchable),
            return_exceptions=True,
        )
        bodies: list[tuple[str, str]] = list(inline)
        for src, result in zip(fetchable, results, strict=True):
            if isinstance(result, HttpResponse):
                if result.status == 200:
                    bodies.append((src, result.text))
            elif not isinstance(result, TargetError):
                raise result
        for url, text in bodies:
            matches = await asyncio.to_thread(retire.scan_content, text)
            for match in matches:
                found.setdefault((match.library, match.version), (url, match))
        for (library, version), (url, match) in sorted(found.items()):
            summaries = "; ".join(
                v.summary.splitlines()[0] for v in match.vulnerabilities if v.summary
            )[:300]
            self.report(
                ctx,
                "vulnerable-js-library",
                url=url,
                parameter=f"{library}@{version}",
                severity=SEVERITY.get(match.severity, Severity.MEDIUM),
                evidence=f"{library} {version} ({match.how}): {', '.join(match.cves) or summaries}",
                details={
                    "library": library,
                    "version": version,
                    "cves": match.cves,
                    "identified_by": match.how,
                    # the page that loads it: covering the page covers the finding
                    "page": scripts.get(url, url),
                },
            )
