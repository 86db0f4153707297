"""Request-wide concerns: who is calling from where, and how big a body may be."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse

from bastion.core.context import reset_client_ip, set_client_ip


def request_ip(request: HttpRequest) -> str | None:
    # Behind a proxy, configure it to set REMOTE_ADDR (gunicorn --forwarded-allow-ips);
    # X-Forwarded-For from arbitrary clients is not trusted.
    return request.META.get("REMOTE_ADDR") or None


def body_limit_for(path: str) -> int:
    """The largest body accepted on this path."""
    for prefix, limit in BodySizeLimitMiddleware.LARGE_BODY_PREFIXES.items():
        if path.startswith(prefix):
            return limit
    return int(settings.CONFIG.max_body_bytes)


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = set_client_ip(request_ip(request))
        try:
            return self.get_response(request)
        finally:
            reset_client_ip(token)


class BodySizeLimitMiddleware:
    """Refuse oversized bodies by their declared length before anything reads them (413).

    Paths that stream large uploads (artifacts, ingest) set their own, larger limits and are
    listed in ``LARGE_BODY_PREFIXES`` with that limit.
    """

    LARGE_BODY_PREFIXES: dict[str, int] = {}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def limit_for(self, path: str) -> int:
        return body_limit_for(path)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_chunked(request):
            refusal = self._buffer_chunked(request)
            if refusal is not None:
                return refusal
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return JsonResponse(
                {"detail": "Content-Length is not a number.", "errors": None}, status=400
            )
        limit = self.limit_for(request.path)
        if length > limit:
            return JsonResponse(
                {
                    "detail": f"Request body too large: {length} bytes, the limit is {limit}.",
                    "errors": None,
                },
                status=413,
            )
        return self.get_response(request)

    def _buffer_chunked(self, request: HttpRequest) -> HttpResponse | None:
        """A chunked body declares no length: read at most limit + 1 bytes of it, refuse it when
        it is longer, otherwise hand it on with its now-known Content-Length."""
        limit = self.limit_for(request.path)
        # Under WSGI, Django reads CONTENT_LENGTH bytes (none here) from wsgi.input, which the
        # server (gunicorn) de-chunks; under ASGI the whole body is already in request._stream.
        source: Any = request.META.get("wsgi.input") or request._stream
        data = _read_at_most(source, limit + 1)
        if len(data) > limit:
            return JsonResponse(
                {
                    "detail": f"Request body too large: more than {limit} bytes (chunked).",
                    "errors": None,
                },
                status=413,
            )
        request.META["CONTENT_LENGTH"] = str(len(data))
        stream: Any = LimitedStream(io.BytesIO(data), len(data))
        request._stream = stream
        return None


def _is_chunked(request: HttpRequest) -> bool:
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return "chunked" in encoding and not request.META.get("CONTENT_LENGTH")


def _read_at_most(source: Any, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    for _ in range(size // 65536 + 2):  # bounded: each round reads up to 64 KiB or ends
        if remaining <= 0:
            break
        part = source.read(min(remaining, 65536))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
