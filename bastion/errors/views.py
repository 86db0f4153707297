"""The Sentry ingest endpoints: plain Django views over raw bodies; they parse and delegate."""

from __future__ import annotations

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bastion.core.middleware import request_ip
from bastion.errors.ingest import (
    IngestError,
    IngestResult,
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


def _json(status: int, body: dict[str, object], headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )
    for name, value in {**CORS_HEADERS, **headers}.items():
        response[name] = value
    return response


def _error(exc: IngestError) -> HttpResponse:
    return _json(exc.status, {"detail": exc.detail}, {"X-Sentry-Error": exc.detail, **exc.headers})


def _auth(request: HttpRequest) -> RequestAuth:
    return RequestAuth(
        x_sentry_auth=request.headers.get("X-Sentry-Auth"),
        authorization=request.headers.get("Authorization"),
        query_key=request.GET.get("sentry_key"),
    )


def _ok(result: IngestResult) -> HttpResponse:
    return _json(200, {"id": result.event_id} if result.event_id else {}, {})


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
        return _error(IngestError(413, "Request body too large."))
    ingest = ingest_store if store else ingest_envelope
    try:
        result = ingest(
            project_id,
            body,
            request.headers.get("Content-Encoding", ""),
            _auth(request),
            request_ip(request),
        )
    except IngestError as exc:
        if exc.status >= 500:
            logger.error("ingest refused: %s", exc.detail)
        return _error(exc)
    return _ok(result)


@csrf_exempt
def envelope(request: HttpRequest, project_id: str) -> HttpResponse:
    return _handle(request, project_id, store=False)


@csrf_exempt
def store(request: HttpRequest, project_id: str) -> HttpResponse:
    return _handle(request, project_id, store=True)
