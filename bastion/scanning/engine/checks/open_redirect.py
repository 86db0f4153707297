"""Open redirect: redirect-like parameters get an inert canary URL; redirects are never followed."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode, urlsplit

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ParameterSite, ScanContext
from bastion.scanning.engine.errors import TargetError
from bastion.scanning.engine.http import HttpResponse

NAME_RE = re.compile(
    r"^(?:url|uri|next|redirect|redirect_?ur[il]|redir|return|return_?to|returnurl|continue|dest"
    r"|destination|goto|go|target|to|out|view|forward|callback|success_url|r|u)$",
    re.I,
)
MAX_PROBES = 8


def _looks_like_redirect(site: ParameterSite) -> bool:
    value = dict(site.query).get(site.name, "")
    return bool(NAME_RE.match(site.name)) or value.startswith(("http://", "https://", "/"))


class OpenRedirectCheck(Check):
    name = "open-redirect"
    finding_types = ("open-redirect",)
    probes_parameters = True

    async def run(self, ctx: ScanContext) -> None:
        sites = [s for s in await ctx.parameters() if _looks_like_redirect(s)][:MAX_PROBES]
        canary_host = f"{ctx.token()}.invalid"
        canary = f"https://{canary_host}/"
        results = await asyncio.gather(
            *(self._probe(ctx, site, canary) for site in sites), return_exceptions=True
        )
        for site, result in zip(sites, results, strict=True):
            if isinstance(result, TargetError):
                continue
            if isinstance(result, BaseException):
                raise result
            location = result.headers.get("location", "") if result.is_redirect else ""
            refresh = re.search(
                r"<meta[^>]+http-equiv=[\"']?refresh[^>]*url=\s*['\"]?https?://"
                + re.escape(canary_host),
                result.text if result.is_html else "",
                re.I,
            )
            if (
                urlsplit(location.strip()).hostname == canary_host
                or location.strip().startswith(f"//{canary_host}")
                or refresh
            ):
                self.report(
                    ctx,
                    "open-redirect",
                    url=site.url,
                    parameter=site.name,
                    response=result,
                    confidence="certain",
                    evidence=f"{site.name}={canary} -> "
                    + (f"Location: {location}" if location else "meta refresh"),
                )

    async def _probe(self, ctx: ScanContext, site: ParameterSite, canary: str) -> HttpResponse:
        query = [(k, canary if k == site.name else v) for k, v in site.query]
        return await ctx.http.get(f"{site.url}?{urlencode(query)}")
