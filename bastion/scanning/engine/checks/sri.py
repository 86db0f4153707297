"""Subresource Integrity: third-party scripts must carry an integrity attribute."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import origin
from bastion.scanning.engine.context import ScanContext


class SriCheck(Check):
    name = "sri"
    finding_types = ("sri-missing",)

    async def run(self, ctx: ScanContext) -> None:
        for page in await ctx.pages():
            if page.document is None:
                continue
            own = origin(page.response.url)
            for script in page.document.scripts:
                if script.src and origin(script.src) != own and not script.integrity:
                    self.report(
                        ctx,
                        "sri-missing",
                        url=page.response.url,
                        parameter=script.src,
                        response=page.response,
                        evidence=f'<script src="{script.src}"> without integrity=',
                    )
