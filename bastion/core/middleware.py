"""Request-wide concerns: who is calling from where, and how big a body may be."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from bastion.core.context import reset_client_ip, set_client_ip


def request_ip(request: HttpRequest) -> str | None:
    # Behind a proxy, configure it to set REMOTE_ADDR (gunicorn --forwarded-allow-ips);
    # X-Forwarded-For from arbitrary clients is not trusted.
    return request.META.get("REMOTE_ADDR") or None


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
        for prefix, limit in self.LARGE_BODY_PREFIXES.items():
            if path.startswith(prefix):
                return limit
        return int(settings.CONFIG.max_body_bytes)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        limit = self.limit_for(request.path)
        if length > limit:
            return JsonResponse(
                {"detail": f"Request body too large: {length} bytes, the limit is {limit}."},
                status=413,
            )
        return self.get_response(request)
