"""Content-Security-Policy quality: present, enforced, no unsafe or broad script sources, and
the directives that do not fall back to default-src (object-src via default-src, base-uri,
frame-ancestors)."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import csp_of
from bastion.scanning.engine.context import Page, ScanContext
from bastion.scanning.engine.html import parse_html

BROAD_SOURCES = {"*", "http:", "https:", "data:", "blob:"}


class CspCheck(Check):
    name = "csp"
    finding_types = (
        "csp-missing",
        "csp-report-only",
        "csp-unsafe-inline",
        "csp-unsafe-eval",
        "csp-wildcard-source",
        "csp-missing-directive",
    )

    async def run(self, ctx: ScanContext) -> None:
        response = await ctx.landing()
        if not response.is_html:
            return
        page = Page(response, parse_html(response.text, response.url))
        policy, report_only = csp_of(page)
        url = response.url
        if policy is None:
            kind = "csp-report-only" if report_only else "csp-missing"
            self.report(
                ctx,
                kind,
                url=url,
                response=response,
                evidence="no enforced Content-Security-Policy",
            )
            return
        script = policy.get("script-src", policy.get("default-src"))
        if script is None:
            self.report(
                ctx,
                "csp-missing-directive",
                url=url,
                parameter="script-src",
                response=response,
                evidence="neither script-src nor default-src is set",
            )
        else:
            has_nonce = any(
                s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in script
            )
            if "'unsafe-inline'" in script and not has_nonce:
                self.report(
                    ctx,
                    "csp-unsafe-inline",
                    url=url,
                    parameter="script-src",
                    response=response,
                    evidence="script-src " + " ".join(script),
                )
            if "'unsafe-eval'" in script:
                self.report(
                    ctx,
                    "csp-unsafe-eval",
                    url=url,
                    parameter="script-src",
                    response=response,
                    evidence="script-src " + " ".join(script),
                )
            broad = [s for s in script if s in BROAD_SOURCES or s.startswith("*")]
            if broad and "'strict-dynamic'" not in script:
                self.report(
                    ctx,
                    "csp-wildcard-source",
                    url=url,
                    parameter="script-src",
                    response=response,
                    evidence="script-src allows " + " ".join(broad),
                )
        objects = policy.get("object-src", policy.get("default-src"))
        if objects is None or objects != ["'none'"]:
            self.report(
                ctx,
                "csp-missing-directive",
                url=url,
                parameter="object-src",
                response=response,
                evidence="object-src is " + (" ".join(objects) if objects else "not set"),
            )
        base = policy.get("base-uri")
        if base is None or not set(base) <= {"'none'", "'self'"}:
            self.report(
                ctx,
                "csp-missing-directive",
                url=url,
                parameter="base-uri",
                response=response,
                evidence="base-uri is " + (" ".join(base) if base else "not set"),
            )
        if "frame-ancestors" not in policy:
            self.report(
                ctx,
                "csp-missing-directive",
                url=url,
                parameter="frame-ancestors",
                response=response,
                evidence="frame-ancestors is not set",
            )
