"""The Sentry ingest endpoints: plain Django views over raw bodies; they parse and delegate."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bastion.core.middleware import request_ip
from bastion.errors.ingest import (
    IngestError,
    RequestAuth,
    ingest_envelope,
    ingest_store,
)

logger = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, "
        "authentication, authorization, content-encoding, transfer-encoding, content-type, "
        "sentry-trace, baggage"
    ),
    "Access-Control-Max-Age": "3600",
}


def answer(
    project_id: str,
    kind: str,
    body: bytes,
    content_encoding: str,
    auth: RequestAuth,
    client_ip: str | None,
) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers of an ingest POST (shared by the Django view and the
    WSGI shortcut, ``bastion.errors.wsgi_shortcut``)."""
    ingest = ingest_store if kind == "store" else ingest_envelope
    try:
        result = ingest(project_id, body, content_encoding, auth, client_ip)
    except IngestError as exc:
        if exc.status >= 500:
            logger.error("ingest refused: %s", exc.detail)
        headers = {"X-Sentry-Error": exc.detail, **exc.headers}
        return exc.status, _encode({"detail": exc.detail}), {**CORS_HEADERS, **headers}
    payload = {"id": result.event_id} if result.event_id else {}
    return 200, _encode(payload), dict(CORS_HEADERS)


def _encode(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _json(status: int, body: dict[str, object], headers: dict[str, str]) -> HttpResponse:
    return _response(status, _encode(body), {**CORS_HEADERS, **headers})


def _response(status: int, body: bytes, headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response


def _auth(request: HttpRequest) -> RequestAuth:
    return RequestAuth(
        x_sentry_auth=request.headers.get("X-Sentry-Auth"),
        authorization=request.headers.get("Authorization"),
        query_key=request.GET.get("sentry_key"),
    )


def _handle(request: HttpRequest, project_id: str, store: bool) -> HttpResponse:
    if request.method == "OPTIONS":
        response = HttpResponse(status=200)
        for name, value in PREFLIGHT_HEADERS.items():
            response[name] = value
        return response
    if request.method != "POST":
        return _json(405, {"detail": "Use POST."}, {"Allow": "POST, OPTIONS"})
    try:
        body = request.body
    except RequestDataTooBig:
        detail = "Request body too large."
        return _json(413, {"detail": detail}, {"X-Sentry-Error": detail})
    return _response(
        *answer(
            project_id,
            "store" if store else "envelope",
            body,
            request.headers.get("Content-Encoding", ""),
            _auth(request),
            request_ip(request),
        )
    )


@csrf_exempt
def envelope(request: HttpRequest, project_id: str) -> HttpResponse:
    return _handle(request, project_id, store=False)


@csrf_exempt
def store(request: HttpRequest, project_id: str) -> HttpResponse:
    return _handle(request, project_id, store=True)
