"""Debug pages and stack traces: on the pages fetched and on a random not-found path."""

from __future__ import annotations

import re

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.checks._util import root_url, snippet
from bastion.scanning.engine.context import ScanContext
from bastion.scanning.engine.http import HttpResponse

DEBUG_PAGES = [
    ("Django", re.compile(r"You're seeing this error because you have <code>DEBUG = True</code>")),
    (
        "Werkzeug",
        re.compile(r"Werkzeug Debugger|The debugger caught an exception in your WSGI application"),
    ),
    ("Laravel", re.compile(r"Whoops! There was an error|ignition-(?:light|dark)|Illuminate\\")),
    ("Symfony", re.compile(r"sf-toolbar|Symfony\\Component\\ErrorHandler")),
    ("Rails", re.compile(r"Action Controller: Exception caught")),
    ("Express", re.compile(r"<pre>\w*Error: .*<br> &nbsp; &nbsp;at ")),
]
STACK_TRACES = [
    ("Python", re.compile(r"Traceback \(most recent call last\):")),
    ("Java", re.compile(r"\bat [\w$.]+\([\w$]+\.java:\d+\)|Exception in thread \"")),
    (
        "PHP",
        re.compile(
            r"(?:Fatal error|Warning|Parse error|Notice)</b>?:.{0,300} on line <b>?\d+|PHP (?:Fatal error|Warning):"
        ),
    ),
    (".NET", re.compile(r"Server Error in '[^']*' Application|\bat System\.[\w.]+\(")),
    ("Node.js", re.compile(r"\bat (?:[\w.<>]+ )?\(?/[\w./-]+\.js:\d+:\d+\)?")),
    ("Ruby", re.compile(r"\.rb:\d+:in `")),
    ("Go", re.compile(r"goroutine \d+ \[running\]:")),
]


class DebugErrorsCheck(Check):
    name = "debug-errors"
    finding_types = ("debug-page", "stack-trace")

    async def run(self, ctx: ScanContext) -> None:
        responses = [page.response for page in await ctx.pages()]
        probe = root_url(ctx.target) + ctx.token() + "/"
        responses.append(await ctx.http.get(probe))
        for response in responses:
            self._inspect(ctx, response)

    def _inspect(self, ctx: ScanContext, response: HttpResponse) -> None:
        if not response.content_type.startswith(("text/", "application/json", "application/xhtml")):
            return
        text = response.text
        for framework, pattern in DEBUG_PAGES:
            match = pattern.search(text)
            if match:
                self.report(
                    ctx,
                    "debug-page",
                    url=response.url,
                    response=response,
                    evidence=f"{framework} debug page: {snippet(text, match.start())}",
                    details={"framework": framework},
                )
                return
        for language, pattern in STACK_TRACES:
            match = pattern.search(text)
            if match:
                self.report(
                    ctx,
                    "stack-trace",
                    url=response.url,
                    response=response,
                    evidence=f"{language} stack trace: {snippet(text, match.start())}",
                    details={"language": language},
                )
                return
