"""Password forms on plain-HTTP pages, or posting to plain-HTTP URLs."""

from __future__ import annotations

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext


class PasswordFormCheck(Check):
    name = "password-form"
    finding_types = ("insecure-password-form",)

    async def run(self, ctx: ScanContext) -> None:
        for page in await ctx.pages():
            if page.document is None:
                continue
            for form in page.document.forms:
                if not any(i.type == "password" for i in form.inputs):
                    continue
                page_http = page.response.url.startswith("http://")
                action_http = form.action.startswith("http://")
                if page_http or action_http:
                    where = "served over HTTP" if page_http else f"submitted to {form.action}"
                    self.report(
                        ctx,
                        "insecure-password-form",
                        url=page.response.url,
                        response=page.response,
                        evidence=f"password form {where}",
                    )
