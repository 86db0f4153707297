"""Host and X-Forwarded-Host injection: is a forged host used for links or redirects?"""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext


class HostHeaderCheck(Check):
    name = "host-header"
    finding_types = ("host-header-injection",)

    async def run(self, ctx: ScanContext) -> None:
        url = (await ctx.landing()).url
        for header in ("X-Forwarded-Host", "Host"):
            forged = f"{ctx.token()}.example"
            response = await ctx.http.get(url, headers={header: forged})
            location = response.headers.get("location", "")
            where = ""
            if forged in location:
                where = f"Location: {location}"
            elif forged.encode() in response.body:
                index = response.body.find(forged.encode())
                where = "body: " + response.body[max(0, index - 60) : index + 60].decode(
                    "utf-8", "replace"
                )
            if where:
                self.report(
                    ctx,
                    "host-header-injection",
                    url=url,
                    parameter=header,
                    response=response,
                    evidence=f"{header}: {forged} reflected in {where}",
                )
