"""Security headers: anti-framing, nosniff, Referrer-Policy, Permissions-Policy, COOP/CORP."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import csp_of
from bastion.scanning.engine.context import Page, ScanContext
from bastion.scanning.engine.html import parse_html

SAFE_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


class SecurityHeadersCheck(Check):
    name = "security-headers"
    finding_types = (
        "clickjacking",
        "nosniff-missing",
        "referrer-policy-weak",
        "permissions-policy-missing",
        "isolation-header-missing",
    )

    async def run(self, ctx: ScanContext) -> None:
        response = await ctx.landing()
        headers = response.headers
        url = response.url
        if response.is_html:
            page = Page(response, parse_html(response.text, response.url))
            policy, _ = csp_of(page)
            xfo = headers.get("x-frame-options", "").strip().lower()
            if xfo not in {"deny", "sameorigin"} and not (policy and "frame-ancestors" in policy):
                self.report(
                    ctx,
                    "clickjacking",
                    url=url,
                    response=response,
                    evidence=f"X-Frame-Options: {xfo}"
                    if xfo
                    else "no X-Frame-Options and no frame-ancestors",
                )
            if "permissions-policy" not in headers:
                self.report(
                    ctx,
                    "permissions-policy-missing",
                    url=url,
                    response=response,
                    evidence="no Permissions-Policy header",
                )
            if "cross-origin-opener-policy" not in headers:
                self.report(
                    ctx,
                    "isolation-header-missing",
                    url=url,
                    response=response,
                    parameter="Cross-Origin-Opener-Policy",
                    evidence="no Cross-Origin-Opener-Policy header",
                )
        if headers.get("x-content-type-options", "").strip().lower() != "nosniff":
            value = headers.get("x-content-type-options")
            self.report(
                ctx,
                "nosniff-missing",
                url=url,
                response=response,
                evidence=f"X-Content-Type-Options: {value}"
                if value
                else "no X-Content-Type-Options header",
            )
        referrer = headers.get("referrer-policy")
        tokens = [t.strip().lower() for t in (referrer or "").split(",") if t.strip()]
        if not tokens or tokens[-1] not in SAFE_REFERRER:
            self.report(
                ctx,
                "referrer-policy-weak",
                url=url,
                response=response,
                evidence=f"Referrer-Policy: {referrer}"
                if referrer
                else "no Referrer-Policy header",
            )
        if "cross-origin-resource-policy" not in headers:
            self.report(
                ctx,
                "isolation-header-missing",
                url=url,
                response=response,
                parameter="Cross-Origin-Resource-Policy",
                evidence="no Cross-Origin-Resource-Policy header",
            )
