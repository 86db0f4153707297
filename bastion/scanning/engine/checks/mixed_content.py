"""Mixed content: HTTPS pages that load scripts, styles, frames or media over plain HTTP."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext


class MixedContentCheck(Check):
    name = "mixed-content"
    finding_types = ("mixed-content",)

    async def run(self, ctx: ScanContext) -> None:
        for page in await ctx.pages():
            doc = page.document
            if doc is None or not page.response.url.startswith("https://"):
                continue
            insecure = [
                *(("script", s.src) for s in doc.scripts if s.src),
                *(("stylesheet", href) for href in doc.stylesheets),
                *doc.resources,
            ]
            for kind, url in insecure:
                if url.startswith("http://"):
                    self.report(
                        ctx,
                        "mixed-content",
                        url=page.response.url,
                        parameter=url,
                        response=page.response,
                        evidence=f"{kind} loaded from {url}",
                    )
