"""security.txt (RFC 9116): present at /.well-known/security.txt, with Contact and a future Expires."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import root_url
from bastion.scanning.engine.context import ScanContext

FIELD_RE = re.compile(r"^\s*(contact|expires)\s*:\s*(.+?)\s*$", re.I | re.M)


class SecurityTxtCheck(Check):
    name = "security-txt"
    finding_types = ("security-txt-missing", "security-txt-invalid")

    async def run(self, ctx: ScanContext) -> None:
        root = root_url(ctx.target)
        for path in (".well-known/security.txt", "security.txt"):
            response = await ctx.http.get(root + path, follow_redirects=True, max_body_bytes=32_768)
            if response.status == 200 and response.content_type == "text/plain":
                break
        else:
            self.report(
                ctx,
                "security-txt-missing",
                url=root + ".well-known/security.txt",
                evidence="no text/plain security.txt at /.well-known/ or /",
            )
            return
        fields: dict[str, str] = {}
        for name, value in FIELD_RE.findall(response.text):
            fields.setdefault(name.lower(), value)
        problems = [
            f"no {name.capitalize()} field" for name in ("contact", "expires") if name not in fields
        ]
        if "expires" in fields:
            try:
                expires = datetime.fromisoformat(fields["expires"].replace("Z", "+00:00"))
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=UTC)
                if expires < datetime.now(UTC):
                    problems.append(f"expired on {fields['expires']}")
            except ValueError:
                problems.append(f"unparsable Expires {fields['expires']!r}")
        if problems:
            self.report(
                ctx,
                "security-txt-invalid",
                url=response.url,
                response=response,
                evidence="; ".join(problems),
            )
