"""Directory listing: folders of the URLs seen on the pages, plus a few common ones."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import root_url, snippet
from bastion.scanning.engine.context import ScanContext
from bastion.scanning.engine.errors import TargetError
from bastion.scanning.engine.http import HttpResponse

LISTING_RE = re.compile(
    r"<title>Index of /|<h1>Index of /|Directory listing for /|\[To Parent Directory\]"
    r"|<title>Directory Listing For"
)
COMMON = ("static/", "uploads/", "files/", "images/", "backup/")
MAX_FOLDERS = 12


class DirectoryListingCheck(Check):
    name = "directory-listing"
    finding_types = ("directory-listing",)

    async def run(self, ctx: ScanContext) -> None:
        pages = await ctx.pages()
        folders: list[str] = []
        root = root_url(ctx.target)
        for page in pages:
            urls = [page.response.url]
            if page.document is not None:
                doc = page.document
                urls += doc.links + doc.stylesheets + [s.src for s in doc.scripts if s.src]
                urls += [u for _, u in doc.resources]
            for url in urls:
                parts = urlsplit(url)
                path = parts.path.rsplit("/", 1)[0] + "/"
                folder = f"{parts.scheme}://{parts.netloc}{path}"
                if folder != root and folder not in folders and ctx.http.scope.contains(folder):
                    folders.append(folder)
        folders = folders[:MAX_FOLDERS] + [root + c for c in COMMON if root + c not in folders]
        fetched = {p.response.url: p.response for p in pages}
        to_fetch = [f for f in folders if f not in fetched]
        results = await asyncio.gather(
            *(ctx.http.get(f, max_body_bytes=262_144) for f in to_fetch), return_exceptions=True
        )
        responses: list[HttpResponse] = list(fetched.values())
        for result in results:
            if isinstance(result, HttpResponse):
                responses.append(result)
            elif not isinstance(result, TargetError):
                raise result
        for response in responses:
            if response.status != 200:
                continue
            match = LISTING_RE.search(response.text)
            if match:
                self.report(
                    ctx,
                    "directory-listing",
                    url=response.url,
                    response=response,
                    evidence=snippet(response.text, match.start()),
                )
