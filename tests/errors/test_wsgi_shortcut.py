"""The WSGI-level ingest path answers like the Django view, and leaves every other case to
Django unchanged."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test import Client

from bastion.errors.models import Event
from bastion.errors.wsgi_shortcut import IngestShortcut
from tests.errors.conftest import Setup
from tests.errors.helpers import envelope, event_payload


class Spy:
    """Django's WSGI handler, counting the requests the shortcut handed to it."""

    def __init__(self) -> None:
        self.django = get_wsgi_application()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.django(environ, start_response)


def call(
    app: IngestShortcut,
    path: str,
    body: bytes = b"",
    method: str = "POST",
    query: str = "",
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **headers,
    }
    setup_testing_defaults(environ)
    answer: dict[str, Any] = {}

    def start_response(status: str, header_list: list[tuple[str, str]], *_: Any) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(header_list)

    data = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], data


@pytest.fixture
def app() -> IngestShortcut:
    return IngestShortcut(Spy())


def test_an_envelope_is_answered_without_django(
    setup_committed: Setup, app: IngestShortcut
) -> None:
    event_id, body = envelope(event_payload())
    path = f"/api/{setup_committed.project.pk}/envelope/"
    auth = f"Sentry sentry_version=7, sentry_key={setup_committed.public_key}"
    status, headers, data = call(app, path, body, HTTP_X_SENTRY_AUTH=auth)
    assert (status, json.loads(data)) == (200, {"id": event_id})
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Length"] == str(len(data))
    assert Event.objects.filter(event_id=event_id).exists()
    # The key in the query string, and the store endpoint.
    status, _, data = call(
        app,
        f"/api/{setup_committed.project.pk}/store/",
        json.dumps(event_payload()).encode(),
        query=f"sentry_key={setup_committed.public_key}&sentry_version=7",
    )
    assert status == 200 and len(json.loads(data)["id"]) == 32
    assert app.app.calls == 0  # type: ignore[attr-defined]
    connection.close()


def test_refusals_match_the_django_view(setup_committed: Setup, app: IngestShortcut) -> None:
    path = f"/api/{setup_committed.project.pk}/envelope/"
    good = f"Sentry sentry_key={setup_committed.public_key}"
    cases = [
        ("Sentry sentry_key=" + "0" * 32, envelope(event_payload())[1]),  # unknown key
        (good, b'{"event_id":"' + b"a" * 32 + b'"}\n{"type":"event","length":999}\n{}'),
        (good, b"not an envelope"),
    ]
    for auth, body in cases:
        status, headers, data = call(app, path, body, HTTP_X_SENTRY_AUTH=auth)
        assert app.app.calls == 0  # type: ignore[attr-defined]
        expected = Client().post(
            path, body, content_type="application/x-sentry-envelope", HTTP_X_SENTRY_AUTH=auth
        )
        assert status == expected.status_code and status in {400, 403}
        assert json.loads(data) == json.loads(expected.content)
        assert headers["X-Sentry-Error"] == expected["X-Sentry-Error"]
    connection.close()


def test_every_other_request_goes_to_django(setup_committed: Setup, app: IngestShortcut) -> None:
    spy: Spy = app.app  # type: ignore[assignment]
    path = f"/api/{setup_committed.project.pk}/envelope/"
    auth = {"HTTP_X_SENTRY_AUTH": f"Sentry sentry_key={setup_committed.public_key}"}
    body = envelope(event_payload())[1]

    status, headers, _ = call(app, path, method="OPTIONS")
    assert (status, spy.calls) == (200, 1)
    assert "x-sentry-auth" in headers["Access-Control-Allow-Headers"]

    status, _, _ = call(app, path, body, HTTP_HOST="evil.example", **auth)
    assert (status, spy.calls) == (400, 2)  # DisallowedHost, from Django

    status, _, _ = call(app, path, body, CONTENT_LENGTH="999999999999", **auth)
    assert (status, spy.calls) == (413, 3)

    status, _, _ = call(app, "/api/projects/", b"{}")
    assert spy.calls == 4  # not an ingest path
    assert Event.objects.count() == 0
    connection.close()
