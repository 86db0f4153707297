"""HTTP -> HTTPS: plain HTTP must redirect to HTTPS on the same host (Observatory "Redirection")."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext
from bastion.scanning.engine.errors import TargetTimeout, TargetUnreachable


class HttpsRedirectCheck(Check):
    name = "https-redirect"
    finding_types = ("https-not-enforced",)

    async def run(self, ctx: ScanContext) -> None:
        parts = urlsplit(ctx.target)
        if parts.scheme == "https":
            port = ctx.options.http_port or 80
            netloc = parts.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if port != 80:
                netloc = f"{netloc}:{port}"
            http_url = urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))
            try:
                response = await ctx.http.get(http_url)
            except (TargetUnreachable, TargetTimeout):
                return  # no plain-HTTP listener: nothing to downgrade to
        else:
            http_url = ctx.target
            response = await ctx.fetch(ctx.target, follow_redirects=False)
        location = response.location if response.is_redirect else None
        if location and urlsplit(location).scheme == "https":
            return
        self.report(
            ctx,
            "https-not-enforced",
            url=http_url,
            response=response,
            evidence=f"plain HTTP answered {response.status}"
            + (f" with a redirect to {location}" if location else " without redirecting to HTTPS"),
        )
