"""What a check sees: the target, the HTTP client, shared fetches, the explored pages, report()."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from bastion.scanning.engine.definitions import Severity
from bastion.scanning.engine.errors import EngineError
from bastion.scanning.engine.findings import Confidence, Finding, coverage_key, excerpt
from bastion.scanning.engine.html import Document, parse_html
from bastion.scanning.engine.http import HttpClient, HttpResponse
from bastion.scanning.engine.policy import LOOPBACK_DEFAULT, Resolver, system_resolver


@dataclass(frozen=True)
class ScanOptions:
    """Everything that defines one scan; the CLI and the agent's scan job both build one."""

    target: str
    profile: str = "lightning"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = LOOPBACK_DEFAULT
    allow_private: bool = False
    checks: tuple[str, ...] = ()  # only these checks (all of the profile when empty)
    trust_roots: Path | None = None  # extra CA certificates (PEM) the TLS check trusts
    http_port: int | None = None  # where the HTTP->HTTPS check looks for plain HTTP
    rate_per_s: float | None = None
    concurrency: int | None = None
    time_budget_s: float | None = None
    resolver: Resolver = field(default=system_resolver, compare=False)
    # A retest: explore only this URL, probe only this parameter (with ``checks``, one check).
    focus_url: str | None = None
    focus_parameter: str | None = None


# The check whose task is running: the runner sets it, coverage is recorded under it.
CURRENT_CHECK: ContextVar[str] = ContextVar("bastion_scan_check", default="")


@dataclass(frozen=True)
class Page:
    response: HttpResponse
    document: Document | None  # None when the response is not HTML


@dataclass(frozen=True)
class ParameterSite:
    """A GET parameter seen on a fetched page: the URL to send it to and the other values."""

    url: str  # without query
    name: str
    query: tuple[tuple[str, str], ...]  # all parameters with their observed values


class Explorer(Protocol):
    async def explore(self, ctx: ScanContext) -> list[Page]: ...


class ScanContext:
    def __init__(
        self,
        options: ScanOptions,
        http: HttpClient,
        explorer: Explorer,
        on_finding: Callable[[Finding], None] | None = None,
    ) -> None:
        self.options = options
        self.target = options.target
        self.http = http
        self.findings: list[Finding] = []
        self._fingerprints: set[str] = set()
        self._explorer = explorer
        self._memo: dict[str, asyncio.Task[Any]] = {}
        self._on_finding = on_finding
        # check name -> coverage keys of the URLs it fetched or reported on (``coverage_key``)
        self.coverage: dict[str, set[str]] = {}
        http.observe(self.cover)

    def cover(self, url: str, check: str = "") -> None:
        """Record that ``check`` (the running one by default) examined ``url``."""
        name = check or CURRENT_CHECK.get()
        if name:
            self.coverage.setdefault(name, set()).add(coverage_key(url))

    # Shared work: each runs once per scan, whichever check asks first.
    def _once(self, key: str, factory: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
        task = self._memo.get(key)
        if task is None:

            async def run() -> Any:
                return await factory()

            task = asyncio.ensure_future(run())
            self._memo[key] = task
        return task

    async def close(self) -> None:
        """Cancel shared work still running (the scan ended or ran out of time)."""
        for task in self._memo.values():
            task.cancel()
        await asyncio.gather(*self._memo.values(), return_exceptions=True)

    async def fetch(self, url: str, *, follow_redirects: bool = True) -> HttpResponse:
        """GET ``url`` once per scan (memoized); raises engine errors to every caller."""
        key = f"GET {url} {follow_redirects}"
        task = self._once(key, lambda: self.http.get(url, follow_redirects=follow_redirects))
        result: HttpResponse = await asyncio.shield(task)
        self.cover(url)  # shared fetches count for every check that asks, not only the first
        self.cover(result.url)
        return result

    async def landing(self) -> HttpResponse:
        return await self.fetch(self.target)

    async def pages(self) -> list[Page]:
        result: list[Page] = await asyncio.shield(
            self._once("explore", lambda: self._explorer.explore(self))
        )
        for page in result:
            self.cover(page.response.url)
        return result

    async def parameters(self) -> list[ParameterSite]:
        sites = discover_parameters(await self.pages(), self.http.scope.contains)
        if self.options.focus_parameter:
            sites = [s for s in sites if s.name == self.options.focus_parameter]
        return sites

    def token(self, prefix: str = "bstn") -> str:
        return f"{prefix}{secrets.token_hex(5)}"

    def report(
        self,
        type_id: str,
        *,
        url: str,
        check: str,
        method: str = "GET",
        parameter: str | None = None,
        evidence: str = "",
        response: HttpResponse | None = None,
        confidence: Confidence = "firm",
        severity: Severity | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Finding | None:
        finding = Finding(
            type=type_id,
            url=url,
            method=method,
            parameter=parameter,
            evidence=excerpt(evidence, 500),
            confidence=confidence,
            severity_override=severity,
            request=_request_excerpt(response) if response else "",
            response=_response_excerpt(response) if response else "",
            check=check,
            details=dict(details or {}),
        )
        self.cover(url, check)
        if finding.fingerprint in self._fingerprints:
            return None
        self._fingerprints.add(finding.fingerprint)
        self.findings.append(finding)
        if self._on_finding:
            self._on_finding(finding)
        return finding


def _request_excerpt(response: HttpResponse) -> str:
    parts = urlsplit(response.url)
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    lines = [f"{response.method} {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in response.request_headers.items() if k.lower() != "cookie"]
    return "\n".join(lines)


def _response_excerpt(response: HttpResponse) -> str:
    head = [f"HTTP/1.1 {response.status}"]
    head += [f"{k}: {v}" for k, v in response.headers.multi_items()]
    body = response.text if response.is_html or response.content_type.startswith("text") else ""
    return excerpt("\n".join(head) + "\n\n" + body)


def document_of(response: HttpResponse) -> Document | None:
    if not response.is_html:
        return None
    return parse_html(response.text, response.url)


def discover_parameters(
    pages: Sequence[Page], in_scope: Callable[[str], bool], limit: int = 30
) -> list[ParameterSite]:
    """GET parameters from links' query strings and GET forms, de-duplicated by (URL, name)."""
    sites: dict[tuple[str, str], ParameterSite] = {}
    candidates: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for page in pages:
        if page.document is None:
            continue
        for link in [page.response.url, *page.document.links]:
            parts = urlsplit(link)
            if parts.query:
                base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
                candidates.append((base, tuple(parse_qsl(parts.query, keep_blank_values=True))))
        for form in page.document.forms:
            if form.method != "GET":
                continue
            parts = urlsplit(form.action)
            base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            fields = tuple(
                (i.name, i.value or "1") for i in form.inputs if i.type not in {"submit", "button"}
            )
            candidates.append((base, fields))
    for base, query in candidates:
        if not in_scope(base):
            continue
        for name, _ in query:
            if (base, name) not in sites and len(sites) < limit:
                sites[(base, name)] = ParameterSite(base, name, query)
    return list(sites.values())


class LinkExplorer:
    """Lightning exploration: the landing page plus in-scope links found on it (depth 1).

    Only GET, only in scope, never links that look like state changes (logout, delete...).
    """

    UNSAFE_WORDS = ("logout", "logoff", "signout", "sign-out", "delete", "remove", "destroy")

    def __init__(self, max_pages: int = 20) -> None:
        self.max_pages = max_pages

    async def explore(self, ctx: ScanContext) -> list[Page]:
        landing = await ctx.landing()
        first = Page(landing, document_of(landing))
        pages = [first]
        if first.document is None:
            return pages
        seen = {landing.url, ctx.target}
        queue: list[str] = []
        for url in first.document.links:
            if url in seen or not ctx.http.scope.contains(url):
                continue
            if any(word in url.lower() for word in self.UNSAFE_WORDS):
                continue
            seen.add(url)
            queue.append(url)
        queue = queue[: self.max_pages - 1]
        results = await asyncio.gather(*(ctx.fetch(u) for u in queue), return_exceptions=True)
        for result in results:
            if isinstance(result, HttpResponse):
                pages.append(Page(result, document_of(result)))
            elif not isinstance(result, EngineError):
                raise result  # bugs and cancellation propagate; failed fetches are skipped
        return pages


class FocusExplorer:
    """A retest's exploration: only the finding's URL (with its parameter in the query)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def explore(self, ctx: ScanContext) -> list[Page]:
        response = await ctx.fetch(self.url)
        return [Page(response, document_of(response))]
