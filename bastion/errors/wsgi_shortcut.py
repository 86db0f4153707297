"""Sentry ingest posts answered at the WSGI level, before Django's request handling.

An SDK's post is keyed, cookie-less and answered with a few bytes of JSON: Django's handler
(request object, request signals, the middleware chain up to ``IngestShortcutMiddleware``,
response object) cost about a sixth of the server's CPU per event under ``bench/ingest.py``.
This wrapper answers the plain case itself — a POST to ``/api/<id>/envelope/`` or ``/store/``
with a Content-Length within the body limit and a Host that ``ALLOWED_HOSTS`` admits — through
the same ``bastion.errors.views.answer`` the Django view uses. Anything else (preflight, other
methods, chunked bodies, a missing or oversized length, an unknown host) goes to Django
unchanged, which answers it exactly as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from bastion.core.context import reset_client_ip, set_client_ip
from bastion.core.middleware import body_limit_for
from bastion.errors.ingest import RequestAuth
from bastion.errors.middleware import INGEST_PATH
from bastion.errors.views import answer

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


class IngestShortcut:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = INGEST_PATH.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = _content_length(environ, body_limit_for(environ["PATH_INFO"]))
        if length is None or not _host_allowed(environ):
            return self.app(environ, start_response)
        client_ip = environ.get("REMOTE_ADDR") or None
        token = set_client_ip(client_ip)
        try:
            status, body, headers = answer(
                match["project_id"],
                match["kind"],
                environ["wsgi.input"].read(length) if length else b"",
                environ.get("HTTP_CONTENT_ENCODING", ""),
                _auth(environ),
                client_ip,
            )
        except Exception:
            logger.exception("ingest failed")
            status, body, headers = 500, b'{"detail":"Internal error."}', {}
        finally:
            reset_client_ip(token)
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *headers.items(),
            ],
        )
        return [body]


def _content_length(environ: dict[str, Any], limit: int) -> int | None:
    """The declared body length when it is a number within the limit; None leaves the request
    to Django (which de-chunks, or answers 400/413)."""
    raw = environ.get("CONTENT_LENGTH") or ""
    if not raw.isdigit():
        return None
    length = int(raw)
    return length if length <= limit else None


def _host_allowed(environ: dict[str, Any]) -> bool:
    host = environ.get("HTTP_HOST")
    if not host or settings.USE_X_FORWARDED_HOST:
        return False  # Django's get_host decides
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = DEBUG_HOSTS
    return bool(domain) and validate_host(domain, allowed)


def _auth(environ: dict[str, Any]) -> RequestAuth:
    query = environ.get("QUERY_STRING", "")
    keys = parse_qs(query).get("sentry_key") if "sentry_key" in query else None
    return RequestAuth(
        x_sentry_auth=environ.get("HTTP_X_SENTRY_AUTH"),
        authorization=environ.get("HTTP_AUTHORIZATION"),
        query_key=keys[-1] if keys else None,
    )
