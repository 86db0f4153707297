"""Every cookie set by the pages fetched: Secure, HttpOnly, SameSite."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import parse_set_cookie
from bastion.scanning.engine.context import ScanContext


class CookieFlagsCheck(Check):
    name = "cookies"
    finding_types = ("cookie-no-secure", "cookie-no-httponly", "cookie-no-samesite")

    async def run(self, ctx: ScanContext) -> None:
        seen: set[str] = set()
        for page in await ctx.pages():
            for response in (*page.response.history, page.response):
                for header in response.set_cookies:
                    cookie = parse_set_cookie(header)
                    if cookie is None or cookie.name in seen:
                        continue
                    seen.add(cookie.name)
                    evidence = f"Set-Cookie: {header[:300]}"
                    common = {
                        "url": response.url,
                        "parameter": cookie.name,
                        "response": response,
                        "evidence": evidence,
                    }
                    if not cookie.secure:
                        self.report(ctx, "cookie-no-secure", **common)  # type: ignore[arg-type]
                    if not cookie.httponly:
                        self.report(ctx, "cookie-no-httponly", **common)  # type: ignore[arg-type]
                    samesite = (cookie.samesite or "").lower()
                    if samesite not in {"lax", "strict"} and not (
                        samesite == "none" and cookie.secure
                    ):
                        self.report(ctx, "cookie-no-samesite", **common)  # type: ignore[arg-type]
