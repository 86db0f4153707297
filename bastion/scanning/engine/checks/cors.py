"""CORS: a reflected arbitrary origin or the null origin with credentials, a wildcard with credentials."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext


class CorsCheck(Check):
    name = "cors"
    finding_types = ("cors-reflected-origin", "cors-null-origin", "cors-wildcard-credentials")

    async def run(self, ctx: ScanContext) -> None:
        url = (await ctx.landing()).url
        evil = f"https://{ctx.token()}.example"
        response = await ctx.http.get(url, headers={"Origin": evil})
        allow = response.headers.get("access-control-allow-origin", "").strip()
        credentials = (
            response.headers.get("access-control-allow-credentials", "").strip().lower() == "true"
        )
        if allow == evil and credentials:
            self.report(
                ctx,
                "cors-reflected-origin",
                url=url,
                parameter="Origin",
                response=response,
                evidence=f"Origin: {evil} -> Access-Control-Allow-Origin: {allow}, credentials allowed",
            )
        elif allow == "*" and credentials:
            self.report(
                ctx,
                "cors-wildcard-credentials",
                url=url,
                response=response,
                evidence="Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true",
            )
        response = await ctx.http.get(url, headers={"Origin": "null"})
        allow = response.headers.get("access-control-allow-origin", "").strip()
        credentials = (
            response.headers.get("access-control-allow-credentials", "").strip().lower() == "true"
        )
        if allow == "null" and credentials:
            self.report(
                ctx,
                "cors-null-origin",
                url=url,
                parameter="Origin",
                response=response,
                evidence="Origin: null -> Access-Control-Allow-Origin: null, credentials allowed",
            )
