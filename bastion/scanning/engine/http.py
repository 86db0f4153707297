"""The scanner's one HTTP layer: httpx over a network backend that enforces the address policy.

Everything a check sends goes through :class:`HttpClient`, which
- refuses URLs outside the scope before anything is sent (:class:`OutOfScope`);
- resolves the host on every new connection, checks each address against the
  :class:`AddressPolicy` and connects only to an address it checked (so DNS changes during a
  scan and redirects to forbidden addresses are caught);
- bounds each exchange in time (connect/read timeouts plus a total wall-clock bound that also
  catches slow-drip servers) and the body in size;
- spends from the scan's request and time budgets, limits concurrency and rate;
- follows redirects itself, re-checking scope on every hop and detecting loops;
- translates httpx, httpcore, ``ssl`` and socket errors into :mod:`engine.errors` once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from bastion.scanning.engine.errors import (
    AddressNotAllowed,
    EngineError,
    RequestBudgetExhausted,
    TargetTimeout,
    TargetTLSError,
    TargetUnreachable,
    TimeBudgetExhausted,
    TooManyRedirects,
)
from bastion.scanning.engine.policy import AddressPolicy, Scope

USER_AGENT = "Bastion-Scanner/0.1 (+lightning)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class HttpLimits:
    """Bounds on one scan's traffic. ``rate_per_s`` of 0 means no rate limit."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    request_total_s: float = 20.0
    max_body_bytes: int = 2_000_000
    max_redirects: int = 5
    max_requests: int = 1_000
    rate_per_s: float = 0.0
    concurrency: int = 8


@dataclass(frozen=True)
class HttpResponse:
    """One response, body already read (at most ``max_body_bytes`` of it)."""

    method: str
    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False
    request_headers: Mapping[str, str] = field(default_factory=dict)
    history: tuple[HttpResponse, ...] = ()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def is_html(self) -> bool:
        return self.content_type in {"text/html", "application/xhtml+xml"}

    @property
    def location(self) -> str | None:
        value = self.headers.get("location")
        return urljoin(self.url, value) if value else None

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECT_STATUSES and "location" in self.headers

    @property
    def set_cookies(self) -> list[str]:
        return self.headers.get_list("set-cookie")

    @property
    def text(self) -> str:
        message = Message()
        message["content-type"] = self.headers.get("content-type", "")
        charset = message.get_content_charset() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Map httpcore/httpx/ssl/socket errors to the engine hierarchy, once, here."""
    try:
        yield
    except EngineError:
        raise
    except (httpcore.TimeoutException, httpx.TimeoutException, TimeoutError) as exc:
        raise TargetTimeout(f"{url}: timed out ({type(exc).__name__})") from exc
    except (httpcore.ConnectError, httpx.ConnectError) as exc:
        if isinstance(exc.__cause__, ssl.SSLError) or isinstance(exc.__context__, ssl.SSLError):
            raise TargetTLSError(f"{url}: TLS handshake failed: {exc}") from exc
        raise TargetUnreachable(f"{url}: cannot connect: {exc or 'connection failed'}") from exc
    except ssl.SSLError as exc:
        raise TargetTLSError(f"{url}: TLS error: {exc}") from exc
    except (httpcore.ProtocolError, httpx.ProtocolError) as exc:
        raise TargetUnreachable(f"{url}: malformed HTTP response: {exc}") from exc
    except (httpcore.NetworkError, httpx.NetworkError, httpx.TransportError) as exc:
        raise TargetUnreachable(f"{url}: connection error: {exc or type(exc).__name__}") from exc
    except httpcore.UnsupportedProtocol as exc:
        raise TargetUnreachable(f"{url}: unsupported protocol") from exc
    except (httpx.InvalidURL, httpx.DecodingError, httpx.StreamError, UnicodeError) as exc:
        raise TargetUnreachable(f"{url}: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise TargetUnreachable(f"{url}: {exc.strerror or exc}") from exc


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks every connection's host, then connects to a checked address."""

    def __init__(self, policy: AddressPolicy, resolve_timeout_s: float = 5.0) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()
        self._resolve_timeout_s = resolve_timeout_s

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(
                self._policy.resolve(host, port), self._resolve_timeout_s
            )
        except TimeoutError as exc:
            raise TargetTimeout(f"resolving {host} timed out") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed("unix sockets are not scan targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _TranslatedStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any, url: str) -> None:
        self._stream = stream
        self._url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with translate_errors(self._url):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with translate_errors(self._url):
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()


def insecure_ssl_context() -> ssl.SSLContext:
    """Scans must reach targets with bad certificates; the TLS check reports those."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx transport on an httpcore pool whose network backend is :class:`GuardedBackend`."""

    def __init__(self, policy: AddressPolicy, max_connections: int) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=insecure_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        url = str(request.url)
        with translate_errors(url):
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_TranslatedStream(response.stream, url),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _RateLimiter:
    def __init__(self, rate_per_s: float) -> None:
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


class HttpClient:
    """Bounded, scoped, policy-checked HTTP for one scan. Use as an async context manager."""

    def __init__(
        self,
        policy: AddressPolicy,
        scope: Scope,
        limits: HttpLimits | None = None,
        *,
        deadline: float | None = None,
        on_request: Callable[[int], None] | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.policy = policy
        self.scope = scope
        self.limits = limits or HttpLimits()
        self.deadline = deadline
        self.requests_sent = 0
        self._on_request = on_request
        self._observers: list[Callable[[str], None]] = []
        self._semaphore = asyncio.Semaphore(self.limits.concurrency)
        self._rate = _RateLimiter(self.limits.rate_per_s)
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(policy, self.limits.concurrency),
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(
                self.limits.read_timeout_s, connect=self.limits.connect_timeout_s
            ),
            follow_redirects=False,
            trust_env=False,
        )

    def observe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(url)`` for every URL that answered (each hop of a redirect chain)."""
        self._observers.append(callback)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    def spend(self) -> float:
        """Take one request from the budget; return the wall-clock bound for it."""
        if self.requests_sent >= self.limits.max_requests:
            raise RequestBudgetExhausted(
                f"request budget of {self.limits.max_requests} requests is spent"
            )
        bound = self.limits.request_total_s
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeBudgetExhausted("the scan's time budget is spent")
            bound = min(bound, remaining)
        self.requests_sent += 1
        if self._on_request:
            self._on_request(self.requests_sent)
        return bound

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
        max_body_bytes: int | None = None,
    ) -> HttpResponse:
        """Send one request (and its redirects when asked); raise only engine errors."""
        history: list[HttpResponse] = []
        seen = {url}
        current_method = method
        while True:
            response = await self._send_one(current_method, url, headers, max_body_bytes)
            for observer in self._observers:
                observer(url)
            if not (follow_redirects and response.is_redirect):
                break
            next_url = response.location
            assert next_url is not None
            if not self.scope.contains(next_url):
                break  # the chain leaves the scope: report it, never follow it
            if len(history) >= self.limits.max_redirects or next_url in seen:
                raise TooManyRedirects(
                    f"{url}: more than {self.limits.max_redirects} redirects or a loop"
                )
            seen.add(next_url)
            history.append(response)
            if response.status == 303 or (response.status in {301, 302} and method == "POST"):
                current_method = "GET"
            url = next_url
        if history:
            response = HttpResponse(
                method=response.method,
                url=response.url,
                status=response.status,
                headers=response.headers,
                body=response.body,
                truncated=response.truncated,
                request_headers=response.request_headers,
                history=tuple(history),
            )
        return response

    async def get(self, url: str, **kwargs: Any) -> HttpResponse:
        return await self.request("GET", url, **kwargs)

    async def _send_one(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        max_body_bytes: int | None,
    ) -> HttpResponse:
        self.scope.require(url)
        limit = max_body_bytes or self.limits.max_body_bytes
        async with self._semaphore:
            await self._rate.wait()
            bound = self.spend()
            try:
                async with asyncio.timeout(bound):
                    return await self._exchange(method, url, headers, limit)
            except TimeoutError as exc:
                raise TargetTimeout(f"{url}: no complete response within {bound:.1f}s") from exc

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str] | None, limit: int
    ) -> HttpResponse:
        with translate_errors(url):
            request = self._client.build_request(method, url, headers=dict(headers or {}))
            response = await self._client.send(request, stream=True)
            try:
                body = bytearray()
                truncated = False
                async for chunk in response.aiter_raw():
                    body.extend(chunk)
                    if len(body) > limit:
                        del body[limit:]
                        truncated = True
                        break
            finally:
                await response.aclose()
        return HttpResponse(
            method=method,
            url=str(request.url),
            status=response.status_code,
            headers=response.headers,
            body=bytes(_decode_body(response.headers, bytes(body), truncated)),
            truncated=truncated,
            request_headers=dict(request.headers),
        )


def _decode_body(headers: httpx.Headers, raw: bytes, truncated: bool) -> bytes:
    """Undo gzip/deflate content-encoding when the whole body arrived; keep raw bytes otherwise."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if truncated or encoding not in {"gzip", "deflate"}:
        return raw
    import zlib

    try:
        wbits = 47 if encoding == "gzip" else zlib.MAX_WBITS
        return zlib.decompressobj(wbits).decompress(raw, 20_000_000)
    except zlib.error:
        return raw


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
