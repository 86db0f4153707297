"""Strict-Transport-Security on HTTPS responses: present, max-age of at least six months."""

from __future__ import annotations

import re

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext

MIN_MAX_AGE = 15_768_000
MAX_AGE_RE = re.compile(r"max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class HstsCheck(Check):
    name = "hsts"
    finding_types = ("hsts-missing", "hsts-weak")

    async def run(self, ctx: ScanContext) -> None:
        response = await ctx.landing()
        if not response.url.startswith("https://"):
            return
        value = response.headers.get("strict-transport-security")
        if value is None:
            self.report(
                ctx,
                "hsts-missing",
                url=response.url,
                response=response,
                evidence="no Strict-Transport-Security header",
            )
            return
        match = MAX_AGE_RE.search(value)
        if not match or int(match.group(1)) < MIN_MAX_AGE:
            self.report(
                ctx,
                "hsts-weak",
                url=response.url,
                response=response,
                evidence=f"Strict-Transport-Security: {value}",
            )
