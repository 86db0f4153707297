"""Bad input gets a clear 4xx with a JSON body ``{"detail", "errors"}`` and changes nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.models import ApiToken, AuditEvent, Project
from tests.api.conftest import ApiClient, Team

PROJECTS = "/organizations/acme/projects"


def _state() -> tuple[int, int, int]:
    return (
        Project.objects.count(),
        ApiToken.objects.count(),
        AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0,
    )


@pytest.fixture
def unchanged(team: Team) -> Iterator[None]:
    """Asserts, after the test, that no project, token or audit row appeared."""
    before = _state()
    yield
    assert _state() == before


def _assert_error_body(body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"slug": "x",}', b"\xff\xfe", b"[1, 2", b"nul"],
    ids=["truncated", "trailing-comma", "not-utf8", "open-array", "bare-word"],
)
def test_malformed_json_is_400(team: Team, unchanged: None, raw: bytes) -> None:
    reply = team.as_owner().call("POST", PROJECTS, raw=raw)
    assert reply.status == 400
    _assert_error_body(reply.body)
    assert "JSON" in reply.body["detail"]


@pytest.mark.parametrize("body", [[], "web", 42, None, {"slug": 7}, {"name": "no slug"}])
def test_wrong_shape_is_400_with_field_errors(team: Team, unchanged: None, body: Any) -> None:
    raw = b"null" if body is None else None
    reply = team.as_owner().call("POST", PROJECTS, body, raw=raw)
    assert reply.status == 400
    _assert_error_body(reply.body)
    assert reply.body["errors"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_wrong_content_type_is_415(team: Team, unchanged: None, content_type: str) -> None:
    reply = team.as_owner().call(
        "POST", PROJECTS, raw=b'{"slug": "web"}', content_type=content_type
    )
    assert reply.status == 415
    _assert_error_body(reply.body)


def test_json_with_charset_is_accepted(team: Team) -> None:
    reply = team.as_owner().call(
        "POST", PROJECTS, raw=b'{"slug": "web"}', content_type="application/json; charset=utf-8"
    )
    assert reply.status == 201


def test_oversized_body_by_content_length_is_413(team: Team, unchanged: None) -> None:
    limit = settings.CONFIG.max_body_bytes
    body = b'{"slug": "web", "description": "' + b"x" * limit + b'"}'
    reply = team.as_owner().call("POST", PROJECTS, raw=body)
    assert reply.status == 413
    _assert_error_body(reply.body)


def _chunked(team: Team, body: bytes) -> Any:
    # What a WSGI server (gunicorn) hands Django for `Transfer-Encoding: chunked`: no
    # CONTENT_LENGTH, and a wsgi.input that yields the de-chunked body.
    return Client().generic(
        "POST",
        "/api/v1" + PROJECTS,
        b"",
        content_type="application/json",
        CONTENT_LENGTH="",
        CONTENT_TYPE="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        HTTP_AUTHORIZATION=f"Bearer {team.owner_token}",
        **{"wsgi.input": io.BytesIO(body)},
    )


def test_oversized_chunked_body_is_413(team: Team, unchanged: None) -> None:
    limit = settings.CONFIG.max_body_bytes
    response = _chunked(team, b'{"slug": "web", "description": "' + b"x" * limit + b'"}')
    assert response.status_code == 413
    _assert_error_body(response.json())


def test_small_chunked_body_is_read(team: Team) -> None:
    response = _chunked(team, b'{"slug": "chunky"}')
    assert response.status_code == 201, response.content
    assert Project.objects.filter(slug="chunky").exists()


@pytest.mark.parametrize(
    "path",
    [
        "/organizations/nope",
        "/organizations/nope/projects",
        "/organizations/acme/projects/nope",
        "/organizations/acme/members/nobody",
        "/organizations/acme/invitations/999999",
        "/organizations/acme/tokens/999999",
    ],
)
def test_unknown_ids_are_404(team: Team, unchanged: None, path: str) -> None:
    client = team.as_owner()
    for method in ("GET", "PATCH", "DELETE"):
        reply = client.call(method, path, {"role": "viewer", "name": "x"})
        if reply.status == 405:  # this path has no such method
            continue
        assert reply.status == 404, (method, path, reply.body)
        _assert_error_body(reply.body)


def _token(team: Team, **kwargs: Any) -> tuple[ApiToken, str]:
    issued = services.create_api_token(
        Principal.of_user(team.owner), team.org, name="t", role="owner", **kwargs
    )
    return issued.token, issued.plaintext


@pytest.mark.parametrize("kind", ["expired", "revoked", "unknown", "malformed", "none"])
def test_bad_tokens_are_401(team: Team, kind: str) -> None:
    token, secret = _token(team, expires_at=timezone.now() + timedelta(days=1))
    if kind == "expired":
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    elif kind == "revoked":
        services.revoke_api_token(Principal.of_user(team.owner), token)
    elif kind == "unknown":
        secret = "bstapi_" + "A" * 43
    elif kind == "malformed":
        secret = "not a token at all"
    before = _state()
    client = ApiClient(token=None if kind == "none" else secret)
    for method, path, body in [
        ("GET", PROJECTS, None),
        ("POST", PROJECTS, {"slug": "web"}),
        ("DELETE", f"/organizations/acme/tokens/{token.pk}", None),
    ]:
        reply = client.call(method, path, body)
        assert reply.status == 401, (kind, method, reply.body)
        _assert_error_body(reply.body)
    assert _state() == before


def test_session_write_without_csrf_is_403(team: Team, unchanged: None) -> None:
    client = ApiClient(user=team.owner, csrf=True)
    reply = client.post(PROJECTS, {"slug": "web"})
    assert reply.status == 403
    _assert_error_body(reply.body)
    assert "CSRF" in reply.body["detail"]
    wrong = client.post(PROJECTS, {"slug": "web"}, HTTP_X_CSRFTOKEN="x" * 64)
    assert wrong.status == 403


def test_session_write_with_csrf_succeeds(team: Team) -> None:
    client = ApiClient(user=team.owner, csrf=True)
    assert client.get(PROJECTS).status == 200  # reads need no CSRF token
    # The double-submit pair a page would carry: the CSRF cookie and the same secret in a header.
    secret = "S3cr3t" * 5 + "ok"  # 32 characters, as Django's CSRF secrets are
    client.client.cookies[settings.CSRF_COOKIE_NAME] = secret
    reply = client.post(PROJECTS, {"slug": "web"}, HTTP_X_CSRFTOKEN=secret)
    assert reply.status == 201, reply.body


def test_unknown_method_is_405_and_changes_nothing(team: Team, unchanged: None) -> None:
    reply = team.as_owner().call("PUT", PROJECTS, {"slug": "web"})
    assert reply.status == 405


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", PROJECTS, {"slug": "web", "name": "a\x00b"}),
        ("GET", "/organizations/ac%00me/projects", None),
        ("GET", "/organizations/acme/audit?action=x%00y", None),
    ],
    ids=["body", "path", "query"],
)
def test_nul_characters_are_400(
    team: Team, unchanged: None, method: str, path: str, body: Any
) -> None:
    # PostgreSQL cannot store U+0000 in text: refused at the edge on both databases.
    reply = team.as_owner().call(method, path, body)
    assert reply.status == 400
    _assert_error_body(reply.body)
    assert "NUL" in reply.body["detail"]


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/no/such/thing"), ("POST", "/organizations/acme/nope"), ("DELETE", "/x/")],
)
def test_unknown_endpoints_are_json_404(team: Team, method: str, path: str) -> None:
    reply = team.as_owner().call(method, path, {})
    assert reply.status == 404
    _assert_error_body(reply.body)


def test_malformed_id_is_400(team: Team) -> None:
    reply = team.as_owner().get("/organizations/acme/invitations/abc")
    assert reply.status in (400, 405)
    reply = team.as_owner().call("DELETE", "/organizations/acme/invitations/abc")
    assert reply.status == 400 and reply.body["errors"][0]["loc"] == ["path", "invitation_id"]
