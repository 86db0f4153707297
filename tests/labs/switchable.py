"""The vulnerable lab with switches, for the findings lifecycle: the reflected input on
``/search`` can be fixed (escaped) and broken again, and the link to it can be removed from
the landing page (so a later scan does not reach it at all)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from tests.labs import vulnerable
from tests.labs.server import LabRequest, LabResponse

SEARCH_LINK = '<a href="/search?q=shoes&amp;sort=asc">Search</a>'


@dataclass
class SwitchableLab:
    reflects: bool = True  # /search echoes q unescaped
    linked: bool = True  # the landing page links to /search

    def __call__(self, request: LabRequest) -> LabResponse:
        if request.path == "/search" and not self.reflects:
            q, sort = (html.escape(request.query.get(k, "")) for k in ("q", "sort"))
            body = f"<html><body><p>Results for {q}</p><p>Sorted by {sort}</p></body></html>"
            return LabResponse(200, body, headers=vulnerable._common(request))
        response = vulnerable.app(request)
        if request.path == "/" and not self.linked and isinstance(response.body, str):
            response.body = response.body.replace(SEARCH_LINK, "")
        return response
