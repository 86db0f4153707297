"""A short way through Django for the Sentry ingest endpoints.

SDKs post to ``/api/<project_id>/envelope/`` and ``/store/`` with a key and no cookie: sessions,
CSRF, users, messages, clickjacking and CSP headers mean nothing there, and URL resolution
against every module's patterns is wasted. Measured under gunicorn (``bench/ingest.py``'s
server, 2 workers x 8 threads), the full middleware stack cost about 1.5 ms of CPU per request,
as much as decoding, normalizing, scrubbing and grouping the event together. Placed right after
the body-size limit (which de-chunks and bounds bodies), this middleware hands those two paths
straight to their views (after the ``ALLOWED_HOSTS`` check CommonMiddleware would make);
every other path goes on through the whole stack unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from bastion.errors import views

# The same paths as bastion/errors/urls.py, including a DSN's path prefix.
INGEST_PATH = re.compile(r"^(?:/.+)?/api/(?P<project_id>[^/]+)/(?P<kind>envelope|store)/$")


class IngestShortcutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = INGEST_PATH.match(request.path_info)
        if match is None:
            return self.get_response(request)
        request.get_host()  # ALLOWED_HOSTS still holds (DisallowedHost is a 400)
        view = views.envelope if match["kind"] == "envelope" else views.store
        return view(request, match["project_id"])
