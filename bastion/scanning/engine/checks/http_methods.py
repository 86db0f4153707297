"""HTTP methods: TRACE echo (sent, harmless) and dangerous methods advertised by OPTIONS.

PUT and DELETE are never sent: the lightning profile runs against production."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext

DANGEROUS = (
    "PUT",
    "DELETE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "CONNECT",
)


class HttpMethodsCheck(Check):
    name = "http-methods"
    finding_types = ("http-trace-enabled", "http-dangerous-method")

    async def run(self, ctx: ScanContext) -> None:
        url = (await ctx.landing()).url
        options = await ctx.http.request("OPTIONS", url)
        advertised = {
            m.strip().upper()
            for header in ("allow", "public", "access-control-allow-methods")
            for m in options.headers.get(header, "").split(",")
        }
        for method in DANGEROUS:
            if method in advertised:
                self.report(
                    ctx,
                    "http-dangerous-method",
                    url=url,
                    method="OPTIONS",
                    parameter=method,
                    response=options,
                    evidence=f"Allow: {options.headers.get('allow', '')}".strip(),
                )
        marker = ctx.token()
        trace = await ctx.http.request("TRACE", url, headers={"X-Bastion-Trace": marker})
        if trace.status == 200 and marker.encode() in trace.body:
            self.report(
                ctx,
                "http-trace-enabled",
                url=url,
                method="TRACE",
                response=trace,
                evidence="TRACE echoed the request header X-Bastion-Trace",
            )
