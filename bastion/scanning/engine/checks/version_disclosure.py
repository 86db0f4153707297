"""Server and framework versions disclosed in response headers."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import VERSION_RE
from bastion.scanning.engine.context import ScanContext

# Headers whose mere presence discloses the stack; Server only when it carries a version.
ALWAYS = (
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-backend-server",
    "x-debug-token",
    "x-generator",
    "x-runtime-version",
)


class VersionDisclosureCheck(Check):
    name = "version-disclosure"
    finding_types = ("version-disclosure",)

    async def run(self, ctx: ScanContext) -> None:
        reported: set[str] = set()
        for page in await ctx.pages():
            response = page.response
            for name in ("server", *ALWAYS):
                value = response.headers.get(name)
                if value is None or name in reported:
                    continue
                if name == "server" and not VERSION_RE.search(value):
                    continue
                reported.add(name)
                header = "-".join(p.capitalize() for p in name.split("-"))
                self.report(
                    ctx,
                    "version-disclosure",
                    url=response.url,
                    parameter=header,
                    response=response,
                    evidence=f"{header}: {value}",
                )
