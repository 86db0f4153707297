"""Reflected input: each GET parameter seen gets a unique inert marker with HTML
metacharacters; if it comes back unencoded in HTML it is reported as likely reflected XSS,
with the context it landed in."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import snippet
from bastion.scanning.engine.context import ParameterSite, ScanContext
from bastion.scanning.engine.errors import TargetError
from bastion.scanning.engine.http import HttpResponse

MAX_PROBES = 20
METACHARS = "'\"<>"


def reflection_context(text: str, index: int) -> str:
    """Where the marker at ``index`` landed: script, comment, attribute or html."""
    before = text[:index]
    lower = before.lower()
    if lower.rfind("<script") > lower.rfind("</script"):
        return "script"
    if before.rfind("<!--") > before.rfind("-->"):
        return "comment"
    if before.rfind("<") > before.rfind(">"):
        tag = before[before.rfind("<") :]
        quotes = tag.count('"') % 2, tag.count("'") % 2
        if quotes[0]:
            return "attribute-double-quoted"
        if quotes[1]:
            return "attribute-single-quoted"
        return "attribute-unquoted"
    return "html"


def exploitable(context: str, after: str) -> bool:
    """Whether the characters that followed the marker break out of ``context``."""
    if context == "html":
        return "<" in after
    if context == "attribute-double-quoted":
        return '"' in after
    if context == "attribute-single-quoted":
        return "'" in after
    if context == "attribute-unquoted":
        return ">" in after or '"' in after or "'" in after
    if context == "script":
        return "<" in after or '"' in after or "'" in after
    if context == "comment":
        return ">" in after
    return False


class ReflectedInputCheck(Check):
    name = "reflected-input"
    finding_types = ("reflected-xss",)
    probes_parameters = True

    async def run(self, ctx: ScanContext) -> None:
        sites = (await ctx.parameters())[:MAX_PROBES]
        markers = [ctx.token("bx") for _ in sites]
        results = await asyncio.gather(
            *(self._probe(ctx, site, m) for site, m in zip(sites, markers, strict=True)),
            return_exceptions=True,
        )
        for site, marker, result in zip(sites, markers, results, strict=True):
            if isinstance(result, TargetError):
                continue
            if isinstance(result, BaseException):
                raise result
            if not result.is_html:
                continue
            self._inspect(ctx, site, marker, result)

    async def _probe(self, ctx: ScanContext, site: ParameterSite, marker: str) -> HttpResponse:
        query = [(k, marker + METACHARS if k == site.name else v) for k, v in site.query]
        return await ctx.http.get(f"{site.url}?{urlencode(query)}")

    def _inspect(
        self, ctx: ScanContext, site: ParameterSite, marker: str, response: HttpResponse
    ) -> None:
        text = response.text
        start = text.find(marker)
        while start != -1:
            after = text[start + len(marker) : start + len(marker) + len(METACHARS)]
            context = reflection_context(text, start)
            if exploitable(context, after):
                self.report(
                    ctx,
                    "reflected-xss",
                    url=site.url,
                    parameter=site.name,
                    response=response,
                    confidence="firm",
                    evidence=f"[{context}] {snippet(text, start)}",
                    details={"context": context, "marker": marker + METACHARS},
                )
                return
            start = text.find(marker, start + 1)
